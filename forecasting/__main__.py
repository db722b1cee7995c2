from forecasting.cli.main import main

raise SystemExit(main())
