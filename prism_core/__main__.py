from prism_core.cli import main

raise SystemExit(main())
