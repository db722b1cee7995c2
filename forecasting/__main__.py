from forecasting.cli.launch import main

raise SystemExit(main())
