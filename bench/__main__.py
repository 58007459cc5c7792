"""``python -m bench --scale ci|small|full [--only NAME] [--reseed]``."""

from bench.harness import main

raise SystemExit(main())
