# gentape's two commands (the README's quick start):
#   make demo   set up, build the CLI, train two small VAEs on MNIST (CPU), write pictures to runs/demo
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

# The VAE demo, two models trained on MNIST on the CPU (about 30 s on an idle 2-core machine):
#   $(DEMO)/latent20  784-400-20 VAE: samples, reconstructions, an interpolation
#   $(DEMO)/latent2   784-400-2 VAE: the latent manifold (needs a 2-D latent) and the latent scatter
# The pictures land in $(DEMO)/; each run directory also holds its loss.png. Builds only the CLI.
DEMO ?= runs/demo
DEMO_EPOCHS ?= 20
GENTAPE = $(BUILD)/tools/gentape
demo: setup configure
	cmake --build $(BUILD) --target gentape -j $(JOBS)
	$(GENTAPE) info
	$(GENTAPE) train vae --data mnist --latent 20 --epochs $(DEMO_EPOCHS) --device cpu --overwrite --out $(DEMO)/latent20
	$(GENTAPE) train vae --data mnist --latent 2 --epochs $(DEMO_EPOCHS) --device cpu --overwrite --out $(DEMO)/latent2
	$(GENTAPE) sample $(DEMO)/latent20 --device cpu --out $(DEMO)/samples.png
	$(GENTAPE) reconstruct $(DEMO)/latent20 --device cpu --out $(DEMO)/reconstructions.png
	$(GENTAPE) interpolate $(DEMO)/latent20 --device cpu --out $(DEMO)/interpolation.png
	$(GENTAPE) manifold $(DEMO)/latent2 --device cpu --out $(DEMO)/manifold.png
	$(GENTAPE) latents $(DEMO)/latent2 --device cpu --out $(DEMO)/latents.png
	@echo "demo: pictures in $(DEMO)/: samples.png reconstructions.png interpolation.png manifold.png latents.png"
	@echo "      runs in $(DEMO)/latent20 and $(DEMO)/latent2 (try: $(GENTAPE) eval $(DEMO)/latent20 --iw-samples 100)"

clean:
	rm -rf $(BUILD) build-gpu build-cpu
