from albertkit.cli import main

raise SystemExit(main())
