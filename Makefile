# gentape's two commands (the README's quick start):
#   make demo   set up, build, and run the main demo
#   make test   set up, build (Release, CUDA sources compiled when nvcc exists), run every test
# Others:
#   make build       configure and build only
#   make test-gpu    build with CUDA forced on and run the whole suite, [cuda] tests included
#   make bench       build and run the kernel benchmarks
#   make cpu-only    build and test with GENTAPE_CUDA=OFF (what a machine without CUDA gets)
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: setup configure build test test-gpu bench demo cpu-only clean

setup:
	@bash tools/setup.sh

$(BUILD)/CMakeCache.txt:
	@bash tools/setup.sh
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

configure: $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

test: setup build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-gpu: setup
	cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DGENTAPE_CUDA=ON $(CMAKE_FLAGS)
	cmake --build build-gpu -j $(JOBS)
	./build-gpu/tools/gentape info
	./build-gpu/tests/gentape_tests

cpu-only: setup
	cmake -S . -B build-cpu -DCMAKE_BUILD_TYPE=Release -DGENTAPE_CUDA=OFF $(CMAKE_FLAGS)
	cmake --build build-cpu -j $(JOBS)
	cd build-cpu && ctest --output-on-failure -j $(JOBS)

bench: build
	@for b in $(BUILD)/benchmarks/bench_*; do echo "== $$b"; $$b || exit 1; done

demo: build
	./$(BUILD)/tools/gentape info
	./$(BUILD)/tools/gentape demo

clean:
	rm -rf $(BUILD) build-gpu build-cpu
