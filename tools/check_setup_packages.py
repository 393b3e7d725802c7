#!/usr/bin/python3
"""Fails naming every Debian package nanoattn uses that tools/setup.sh does not install.

    tools/check_setup_packages.py BUILD_DIR [--setup tools/setup.sh] [--verbose]

What is "used" is read off a configured and built tree, not from a list kept by hand:
  - the absolute paths in BUILD_DIR/CMakeCache.txt: package dirs, libraries, headers and
    programs that CMake found;
  - every header in the compiler's dependency files (BUILD_DIR/**/*.o.d);
  - every shared library that the built programs, libraries and plugins load (ldd);
  - every module that the project's Python scripts import, as /usr/bin/python3 finds it;
  - every program that the sources check for with `command -v NAME` or run by an absolute
    path (/usr/bin/python3, #! lines), as PATH finds it.
Each is mapped to its package with `dpkg -S`. A package is covered when setup.sh lists it, when
a listed package pulls it in (Depends and Pre-Depends, recursively, as installed here: what apt
installs with --no-install-recommends), or when it is part of a minimal Debian 12 (the
Essential packages and what they need, plus apt, and git that cloned the repository).
Packages of optional features (OPTIONAL below) that are not installed are not required.
Exit status 1 names each package that is not covered and one file that needs it.
"""
import argparse
import ast
import glob
import os
import re
import shutil
import subprocess
import sys

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_EXTRAS = ["apt", "git"]  # a minimal root has apt; the newcomer cloned with git
PYTHON = "/usr/bin/python3"   # what the scripts run with (the python3 on PATH may be another)
# Optional features: setup.sh installs them, but nanoattn builds and passes its tests without
# them (CMake finds them or not; the tests that need them are registered only when found). On a
# machine without them, their packages and the programs they bring are not required.
OPTIONAL = {"libopenmpi-dev": (), "openmpi-bin": ("mpirun",)}  # data-parallel training


def setup_packages(setup_sh):
    """The words of the `packages=( ... )` array in setup.sh, comments dropped."""
    text = open(setup_sh).read()
    m = re.search(r"^packages=\((.*?)^\)", text, re.S | re.M)
    if not m:
        sys.exit(f"{setup_sh}: no packages=( ... ) array found")
    return [w for line in m.group(1).splitlines() for w in line.split("#")[0].split()]


# ---- what the build and the scripts use: file paths ------------------------------------

def cmake_cache_paths(build):
    paths = []
    for line in open(os.path.join(build, "CMakeCache.txt")):
        m = re.match(r"^([^#/][^:]*):(PATH|FILEPATH)=(/.+)$", line.strip())
        if m and m.group(1) != "CMAKE_INSTALL_PREFIX" and os.path.exists(m.group(3)):
            paths.append((m.group(3), f"CMakeCache.txt: {m.group(1)}"))
    return paths


def compiler_dependency_paths(build):
    seen = {}
    for dep in glob.glob(os.path.join(build, "**", "*.o.d"), recursive=True):
        words = open(dep).read().replace("\\\n", " ").split()
        for w in words[1:]:  # words[0] is "target.o:"
            if w.startswith("/") and not w.startswith((PROJECT + "/", os.path.abspath(build) + "/")):
                seen.setdefault(os.path.normpath(w), f"compiled into {os.path.relpath(dep, build)}")
    return list(seen.items())


def elf_files(build):
    for folder in ("bin", "lib"):
        for path in glob.glob(os.path.join(build, folder, "**", "*"), recursive=True):
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        yield path


def linked_library_paths(build):
    seen = {}
    for elf in elf_files(build):
        out = subprocess.run(["ldd", elf], capture_output=True, text=True).stdout
        for m in re.finditer(r"=>\s+(/\S+)", out):
            if not m.group(1).startswith(os.path.abspath(build) + "/"):
                seen.setdefault(m.group(1), f"loaded by {os.path.relpath(elf, build)}")
    return list(seen.items())


def project_files(pattern_ext, skip=("build", ".git", "tools/bench")):
    """Project files with this extension; tools/bench is left out (the PyTorch peer's
    benchmarks need torch, which setup.sh does not install: see the README)."""
    out = []
    for root, dirs, files in os.walk(PROJECT):
        rel = os.path.relpath(root, PROJECT)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel, d)) not in skip
                   and not d.startswith("build")]
        out += [os.path.join(root, f) for f in files if f.endswith(pattern_ext)]
    return sorted(out)


def python_module_paths():
    modules = {}
    scripts = project_files(".py")
    own = {os.path.splitext(os.path.basename(s))[0] for s in scripts}  # the project's own modules, imported by name
    for script in scripts:
        for node in ast.walk(ast.parse(open(script).read(), script)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for n in names:
                if n.split(".")[0] not in own:
                    modules.setdefault(n.split(".")[0], os.path.relpath(script, PROJECT))
    if not os.path.exists(PYTHON):
        return [], [f"{PYTHON} is not installed (the Python scripts run with it): run tools/setup.sh"]
    code = ("import importlib.util, sys\n"
            "for m in sys.argv[1:]:\n"
            "    s = importlib.util.find_spec(m)\n"
            "    print(m, s.origin if s and s.origin else '-')\n")
    out = subprocess.run([PYTHON, "-c", code, *modules], capture_output=True, text=True, check=True).stdout
    paths, missing = [], []
    for line in out.splitlines():
        name, origin = line.split(" ", 1)
        if origin == "-":
            missing.append(f"Python module '{name}' (imported by {modules[name]}) is not installed for {PYTHON}")
        elif origin not in ("built-in", "frozen"):
            paths.append((origin, f"Python module '{name}', imported by {modules[name]}"))
    return paths, missing


def program_paths(absent_optional=()):
    """Programs named in the sources the precise way: `command -v NAME` (a check before use)
    and absolute paths such as /usr/bin/python3 or a #! line. Programs of optional packages that
    are not installed (`absent_optional`) are not required."""
    names = {}
    for src in sum((project_files(e) for e in (".sh", ".py", ".cpp", ".h", ".cmake", "CMakeLists.txt")), []):
        if os.path.samefile(src, __file__):
            continue  # its own docstring names examples
        text = open(src).read()
        for w in re.findall(r"command -v ([\w.+-]+)", text) + re.findall(r"(?<![\w/.$-])(/(?:usr/)?s?bin/[\w.+-]+)", text):
            names.setdefault(w, os.path.relpath(src, PROJECT))
    paths, problems = [], []
    for name, src in sorted(names.items()):
        path = name if name.startswith("/") else shutil.which(name)
        if path and os.path.exists(path):
            paths.append((path, f"program '{name}', run by {src}"))
        elif not any(name in OPTIONAL[p] for p in absent_optional):
            problems.append(f"program '{name}' (run by {src}) is not installed here")
    return paths, problems


# ---- paths to packages, and what setup.sh covers -------------------------------------

def usrmerge_variants(path):
    """Debian 12 has merged /usr, but dpkg records some files under /lib or /bin."""
    out = [path, os.path.realpath(path)]
    for p in list(out):
        for a, b in (("/usr/lib/", "/lib/"), ("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
            if p.startswith(a):
                out.append(b + p[len(a):])
            elif p.startswith(b):
                out.append(a + p[len(b):])
    return list(dict.fromkeys(out))


def owners(paths):
    """path -> set of packages, via `dpkg -S` (exact paths: dpkg looks each up directly)."""
    result = {}
    todo = {p: usrmerge_variants(p) for p in paths}
    for i in range(max((len(v) for v in todo.values()), default=0)):
        ask = sorted({v[i] for p, v in todo.items() if p not in result and i < len(v)})
        for chunk in (ask[k:k + 2000] for k in range(0, len(ask), 2000)):
            out = subprocess.run(["dpkg", "-S", *chunk], capture_output=True, text=True).stdout
            for line in out.splitlines():
                if line.startswith("diversion "):
                    continue
                pkgs, _, path = line.partition(": ")
                found = {p.strip().split(":")[0] for p in pkgs.split(",")}
                for orig, variants in todo.items():
                    if orig not in result and i < len(variants) and variants[i] == path:
                        result[orig] = found
    return result


def installed_packages():
    fields = "${Package}\t${db:Status-Abbrev}\t${Essential}\t${Provides}\t${Depends}\t${Pre-Depends}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fields], capture_output=True, text=True, check=True).stdout
    pkgs, provides = {}, {}
    for line in out.splitlines():
        name, status, essential, prov, deps, predeps = line.split("\t")
        if not status.startswith("ii"):
            continue
        pkgs[name] = {"essential": essential == "yes", "deps": ", ".join(d for d in (deps, predeps) if d)}
        for p in prov.split(","):
            if p.strip():
                provides.setdefault(p.split("(")[0].strip().split(":")[0], []).append(name)
    return pkgs, provides


def closure(roots, pkgs, provides):
    """Everything the roots pull in through Depends/Pre-Depends; of alternatives (a | b), the
    ones installed here; a virtual package stands for the installed packages that provide it."""
    done, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in done:
            continue
        done.add(p)
        if p not in pkgs:
            continue
        for clause in filter(None, (c.strip() for c in pkgs[p]["deps"].split(","))):
            for alt in clause.split("|"):
                name = alt.split("(")[0].strip().split(":")[0]
                todo += [name] if name in pkgs else provides.get(name, [])
    return done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", help="a configured and built build folder")
    ap.add_argument("--setup", default=os.path.join(PROJECT, "tools", "setup.sh"))
    ap.add_argument("--verbose", action="store_true", help="list every package used and why")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.build, "CMakeCache.txt")):
        sys.exit(f"{a.build}: no CMakeCache.txt; configure and build first (cmake -S . -B {a.build} && "
                 f"cmake --build {a.build})")

    pkgs, provides = installed_packages()
    absent_optional = [p for p in OPTIONAL if p not in pkgs]
    py_paths, problems = python_module_paths()
    prog_paths, missing = program_paths(absent_optional)
    problems += missing
    used = cmake_cache_paths(a.build) + compiler_dependency_paths(a.build) + linked_library_paths(a.build) \
        + py_paths + prog_paths
    why = {}
    for path, reason in used:
        why.setdefault(path, reason)
    owner = owners(list(why))

    listed = setup_packages(a.setup)
    problems += [f"{a.setup} lists '{p}', which is not installed here: run it" for p in listed
                 if p not in pkgs and p not in absent_optional]
    base = closure([p for p, info in pkgs.items() if info["essential"]] + BASE_EXTRAS, pkgs, provides)
    covered = closure(listed, pkgs, provides) | base

    needed = {}
    for path, reason in why.items():
        if path not in owner:
            problems.append(f"{path} ({reason}) belongs to no Debian package: a newcomer's machine will "
                            "not have it")
            continue
        if not owner[path] & covered:
            for p in sorted(owner[path]):
                needed.setdefault(p, f"{path} ({reason})")
        if a.verbose:
            print(f"{'/'.join(sorted(owner[path]))}: {path} ({reason})")
    for p, example in sorted(needed.items()):
        problems.append(f"package '{p}' is used but {a.setup} neither lists it nor pulls it in: {example}")

    print(f"checked {len(why)} files that the build, the tests and the scripts use: "
          f"{len({p for s in owner.values() for p in s})} packages, {len(listed)} listed in {a.setup}")
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
