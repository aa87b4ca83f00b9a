# Thin wrapper over CMake. `make demo` and `make test` are the README quick start.
BUILD      ?= build
BUILD_SAN  ?= build-san
BUILD_CLANG_SAN ?= build-clang-san
BUILD_FUZZ ?= build-fuzz
CLANG      ?= clang-14
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 10
JOBS       ?= $(shell nproc)
SAN_ENV    = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: all deps build build-san build-clang-san build-fuzz fuzz fuzz-smoke test test-fast demo \
	demo-rotation image demo-kube clean

all: build

deps:
	@bash scripts/install-deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-san:
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DOUTRIDER_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_SAN) -j $(JOBS)

# The unit tests built by clang with ASan+UBSan, and run.
build-clang-san:
	CC=$(CLANG) cmake -S . -B $(BUILD_CLANG_SAN) -DCMAKE_BUILD_TYPE=Debug -DOUTRIDER_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_CLANG_SAN) -j $(JOBS)
	cd $(BUILD_CLANG_SAN) && $(SAN_ENV) ctest -R '^unit/' --output-on-failure

# Fuzz targets (docs/fuzzing.md): `make fuzz` runs each for FUZZ_SECONDS,
# `make fuzz-smoke` runs every seed and then each for FUZZ_SMOKE_SECONDS.
build-fuzz:
	CC=$(CLANG) cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 \
		-DOUTRIDER_FUZZ=ON >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target outrider_fuzz

fuzz: deps build-fuzz
	bash fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

fuzz-smoke: deps build-fuzz
	bash fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SMOKE_SECONDS) smoke

# Every test, twice: an optimised build and an ASan+UBSan build; then the
# unit tests built by clang with ASan+UBSan, and the fuzz smoke run.
test: deps build build-san
	cd $(BUILD) && ctest --output-on-failure
	cd $(BUILD_SAN) && $(SAN_ENV) ctest --output-on-failure
	$(MAKE) --no-print-directory build-clang-san
	$(MAKE) --no-print-directory fuzz-smoke

test-fast: build
	cd $(BUILD) && ctest --output-on-failure

demo: deps build
	@bash scripts/demo.sh

# The second demo: certificates that live 10 s, rotated live under traffic.
demo-rotation: deps build
	@bash scripts/demo.sh rotation

# The OCI image (FROM scratch: the three programs and the libraries they
# load), tagged outrider:<version> and outrider:dev, with its SBOM;
# docs/image.md.
image: deps build
	@bash scripts/image.sh $(BUILD)

# The Kubernetes manifests of config-examples/kubernetes/, played with
# podman on a network of their own; docs/deploy.md.
demo-kube: image
	@bash scripts/demo-kube.sh

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_CLANG_SAN) $(BUILD_FUZZ)
