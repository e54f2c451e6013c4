#!/usr/bin/env bash
# Builds llama.cpp (its shared library, `llama-bench` and `test-backend-ops`) from the source
# that PyPI's llama-cpp-python sdist vendors: no network beyond PyPI, no git clone. The sdist
# is pinned by version and sha256; the vendored llama.cpp is the commit its changelog names.
#
#   scripts/peers/llamacpp.sh [cpu|cuda]      # prints the install folder (target/llamacpp/<kind>)
#
# The folder gets bin/ (llama-bench, test-backend-ops), lib/ (libllama.so, libggml*.so: what
# the Python binding loads through LLAMA_CPP_LIB_PATH), py/ (the binding's pure-Python
# package, from the same sdist) and build.json (the CMake flags, the compiler, the build time,
# the llama.cpp commit). A finished build is reused; FORCE=1 rebuilds.
#
# CPU flags: GGML_NATIVE=OFF with the instruction sets named one by one: by default those
# this machine's CPU reports in /proc/cpuinfo (a set written down once for one VM crashed on
# another of the same family, below). LLAMACPP_CPU_FLAGS replaces the default set;
# docs/peers.md ("llama.cpp") says which features were tried and why each is in or out.
# CUDA (on the GPU machine, which has nvcc, CMake and ninja): compute capability 9.0 only
# (LLAMACPP_CUDA_ARCH, default 90). LLAMACPP_JOBS: parallel compile jobs (default nproc).
# LLAMACPP_SRC: an unpacked sdist tree to build instead (machines without network; the
# tree of `scripts/peers/llamacpp.sh pack` below, carried there).
#   scripts/peers/llamacpp.sh pack DEST.tar.gz   # the sdist's tree without models/ and docs/
set -euo pipefail
cd "$(dirname "$0")/../.."
kind=${1:-cpu}
if [[ $kind == pack ]]; then
  dest=${2:?usage: $0 pack DEST.tar.gz}
  base=target/llamacpp/src/llama_cpp_python-0.3.36
  [[ -d $base/vendor/llama.cpp ]] || { echo "llamacpp.sh: run '$0 cpu' first (it unpacks the sdist)" >&2; exit 1; }
  mkdir -p "$(dirname "$dest")"
  tar -czf "$dest" -C "$(dirname "$base")" --exclude=vendor/llama.cpp/models --exclude=vendor/llama.cpp/docs \
    --exclude=vendor/llama.cpp/tools/ui --exclude=vendor/llama.cpp/media \
    --exclude=.git --exclude=vendor/llama.cpp/benches "$(basename "$base")"
  ls -l "$dest" >&2; exit 0
fi
[[ $kind == cpu || $kind == cuda ]] || { echo "usage: $0 [cpu|cuda|pack DEST]" >&2; exit 2; }
version=0.3.36
sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
commit=0c1e57098 # the llama.cpp commit llama-cpp-python 0.3.36 vendors (its CHANGELOG.md)
root=$(realpath -m target/llamacpp)
dest=$root/$kind
if [[ -s $dest/build.json && -x $dest/bin/llama-bench && -z ${FORCE:-} ]]; then
  echo "$dest"; exit 0
fi
mkdir -p "$root"
tarball=$root/llama_cpp_python-$version.tar.gz
if [[ -n ${LLAMACPP_SRC:-} ]]; then
  # a machine with no network (the GPU machines): the sdist's tree, unpacked elsewhere
  [[ -f $LLAMACPP_SRC/vendor/llama.cpp/CMakeLists.txt ]] || { echo "llamacpp.sh: $LLAMACPP_SRC has no vendor/llama.cpp" >&2; exit 1; }
  src=$LLAMACPP_SRC
elif [[ ! -s $tarball ]]; then
  # the sdist's address from PyPI's simple index (PEP 503; its JSON API is not served by every
  # mirror), relative addresses resolved against the index page
  python3 - "$version" "$tarball.part" >&2 <<'PY'
import re, sys, urllib.parse, urllib.request
version, out = sys.argv[1], sys.argv[2]
index = "https://pypi.org/simple/llama-cpp-python/"
page = urllib.request.urlopen(index, timeout=120).read().decode()
name = f"llama_cpp_python-{version}.tar.gz"
hrefs = [h for h in re.findall(r'href="([^"]+)"', page) if h.split("#")[0].endswith("/" + name)]
if not hrefs:
    sys.exit(f"llamacpp.sh: PyPI's index lists no sdist {name}")
url = urllib.parse.urljoin(index, hrefs[0].split("#")[0])
print(f"llamacpp.sh: fetching {url}", file=sys.stderr)
urllib.request.urlretrieve(url, out)
PY
  mv "$tarball.part" "$tarball"
fi
if [[ -z ${LLAMACPP_SRC:-} ]]; then
  echo "$sha  $tarball" | sha256sum -c --quiet - >&2 || { echo "llamacpp.sh: $tarball: wrong sha256" >&2; exit 1; }
  src=$root/src/llama_cpp_python-$version
  if [[ ! -d $src/vendor/llama.cpp ]]; then
    mkdir -p "$root/src"
    tar -xzf "$tarball" -C "$root/src"
  fi
fi
command -v cmake >/dev/null || { echo "llamacpp.sh: cmake not found (apt-get install cmake)" >&2; exit 1; }
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [[ $kind == cpu ]]; then
  # The instruction sets this CPU reports (/proc/cpuinfo), each named: the project's VMs are
  # not all the same AMD EPYC (one had AVX-VNNI, another of the same family has not, and a
  # build with it dies there with SIGILL at the first matrix product).
  cpu=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  default=""
  has() { for f in "$@"; do [[ $cpu == *" $f "* ]] || return 1; done; }
  has avx && default+=" -DGGML_AVX=ON"
  has avx2 && default+=" -DGGML_AVX2=ON"
  has fma && default+=" -DGGML_FMA=ON"
  has f16c && default+=" -DGGML_F16C=ON"
  has bmi2 && default+=" -DGGML_BMI2=ON"
  has avx512f avx512bw avx512dq avx512vl && default+=" -DGGML_AVX512=ON"
  has avx512vbmi && default+=" -DGGML_AVX512_VBMI=ON"
  has avx512_vnni && default+=" -DGGML_AVX512_VNNI=ON"
  has avx_vnni && default+=" -DGGML_AVX_VNNI=ON"
  has avx512_bf16 && default+=" -DGGML_AVX512_BF16=ON"
  has amx_tile amx_int8 && default+=" -DGGML_AMX_TILE=ON -DGGML_AMX_INT8=ON"
  has amx_tile amx_bf16 && default+=" -DGGML_AMX_BF16=ON"
  read -r -a flags <<<"-DGGML_NATIVE=OFF ${LLAMACPP_CPU_FLAGS:-$default}"
else
  read -r -a flags <<<"-DGGML_NATIVE=OFF -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=${LLAMACPP_CUDA_ARCH:-90}"
fi
build=$root/build-$kind
rm -rf "$build" "$dest"
start=$(date +%s)
cmake -S "$src/vendor/llama.cpp" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=ON \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_BUILD_APP=OFF "${flags[@]}" >&2
cmake --build "$build" -j "${LLAMACPP_JOBS:-$(nproc)}" --target llama-bench test-backend-ops >&2
secs=$(( $(date +%s) - start ))
mkdir -p "$dest/bin" "$dest/lib"
cp "$build/bin/llama-bench" "$build/bin/test-backend-ops" "$dest/bin/"
find "$build" -name 'lib*.so*' -exec cp -P {} "$dest/lib/" \;
cp -r "$src/llama_cpp" "$dest/py"
python3 - "$dest/build.json" "$kind" "$version" "$commit" "$secs" "$build/CMakeCache.txt" "${flags[@]}" <<'PY'
import json, platform, re, subprocess, sys
out, kind, version, commit, secs, cache, *flags = sys.argv[1:]
ggml = {}
for line in open(cache):
    if line.startswith("GGML_") and ":" in line and "=" in line:
        k, v = line.strip().split("=", 1)
        name = k.split(":")[0]
        # the options that choose code paths (instruction sets, threading, CUDA)
        if re.match(r"GGML_(NATIVE|AVX|AMX|FMA|F16C|BMI2|SSE42|OPENMP|CPU_REPACK|LLAMAFILE|BLAS|LTO|CUDA)", name):
            ggml[name] = v
cc = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
json.dump({
    "engine": "llama.cpp", "kind": kind, "llama_cpp_commit": commit,
    "source": f"llama-cpp-python {version} sdist (PyPI), vendor/llama.cpp",
    "cmake_flags": flags, "ggml_options": ggml, "compiler": cc,
    "machine": platform.machine(), "build_seconds": int(secs),
}, open(out, "w"), indent=1)
PY
echo "llamacpp.sh: built in ${secs} s -> $dest" >&2
echo "$dest"
