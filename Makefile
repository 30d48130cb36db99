# Conveniences over ./dev.sh, which works where make is not installed.
.PHONY: run test bench
run:
	./dev.sh run
test:
	./dev.sh test
bench:
	.venv/bin/tollgate bench
