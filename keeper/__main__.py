from keeper.cli import main

raise SystemExit(main())
