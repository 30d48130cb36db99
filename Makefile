# Conveniences over ./dev.sh, which works where make is not installed.
.PHONY: run test
run:
	./dev.sh run
test:
	./dev.sh test
