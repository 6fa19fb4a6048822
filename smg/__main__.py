from smg.cli.main import main

raise SystemExit(main())
