"""compare_lib.py: the summary helpers shared by benchmarks/compare_{vae,ae,ddpm}.sh (their Python
summaries import it through compare_lib.sh's cmp_python; plain Python, no torch needed).

A run is starred when its process CPU time / wall time is below 0.9 x threads: its threads did not
all run (other load on the machine), and a descheduled OpenMP thread stalls every barrier, so such
a run is not a fair comparison. The issue's target for every benchmark is gentape / torch <= 0.5.
"""
import json
import os
import statistics as st

ENGINES = ("gentape", "torch", "torch-plain")
LABEL = {"gentape": "gentape", "torch": "torch (best)", "torch-plain": "torch (no malloc tunables)"}
TARGET = 0.5


def engines_run(work, first_file):
    """The engines whose round-1 file exists; first_file is a pattern like "%s-r1.json"."""
    return [e for e in ENGINES if os.path.exists(os.path.join(work, first_file % e))]


def rng(v, f):
    """'median [min-max]' of v, each formatted with f."""
    return (f + " [" + f + "-" + f + "]") % (st.median(v), min(v), max(v))


def contended(cpu_per_wall, threads):
    return cpu_per_wall < 0.9 * threads


def verdict(ratio, any_contended):
    return "not judged: contended runs (*)" if any_contended else "met" if ratio <= TARGET else "NOT met"


def last_json(path):
    """The last line of a file of JSON lines, parsed."""
    return json.loads(open(path).read().strip().splitlines()[-1])


def assumed_peak(threads):
    """(GHz, GFLOP/s): threads x /proc/cpuinfo's clock (the nominal one on this VM) x 32 FLOP/cycle
    (AVX2: 2 FMA units x 8 lanes x 2), as benchmarks/harness.h assumes."""
    ghz = next(float(l.split(":")[1]) for l in open("/proc/cpuinfo") if l.startswith("cpu MHz")) / 1000
    return ghz, ghz * 32 * threads
