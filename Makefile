# Thin wrapper over CMake. `make demo` and `make test` are the README quick start.
BUILD      ?= build
BUILD_SAN  ?= build-san
JOBS       ?= $(shell nproc)

.PHONY: all deps build build-san test test-fast demo demo-rotation clean

all: build

deps:
	@bash scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-san:
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DOUTRIDER_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_SAN) -j $(JOBS)

# Every test, twice: an optimised build and an ASan+UBSan build.
test: deps build build-san
	cd $(BUILD) && ctest --output-on-failure
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure

test-fast: build
	cd $(BUILD) && ctest --output-on-failure

demo: deps build
	@bash scripts/demo.sh

# The second demo: certificates that live 10 s, rotated live under traffic.
demo-rotation: deps build
	@bash scripts/demo.sh rotation

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
