"""Scheduled batch forecasting with recurrent neural networks (Keras SimpleRNN, LSTM, GRU)."""

__version__ = "0.1.0"
