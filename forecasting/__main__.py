from forecasting.cli import main

raise SystemExit(main())
