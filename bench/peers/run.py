"""Run the public test suites of three Tarantool connectors against Styx and
write bench/peers/RESULTS.md.

    python bench/peers/run.py                 # after: this checkout's Styx
    python bench/peers/run.py --before REV    # and a "before" column: REV's Styx
    python bench/peers/run.py --suite asynctnt --suite node-tarantool-driver

Where the suites come from (nothing else is fetched; all through pip/npm, cached
in bench/peers/.work/):
- tarantool-python: the `test/` tree of the PyPI sdist `tarantool==<the version
  installed here>` (`pip download --no-binary :all:`); test dependency
  dbapi-compliance from PyPI (`pip install --target`);
- asynctnt: the `tests/` tree of the PyPI sdist `asynctnt==<installed version>`;
  test dependency python-dateutil from PyPI;
- Node's tarantool-driver: npm `tarantool-driver@3.0.6` (its package ships
  test/app.js and test/box.lua), with the devDependencies it names (mocha 2,
  chai 4, sinon 3).

    python bench/peers/run.py --lua           # the suites' own Lua: Tarantool 2.6 vs Styx

--lua runs each suite twice with its own Lua setup script: against the
`tarantool` binary on PATH (Tarantool 2.6 here), started the suite's own way,
and against Styx serving that same script (less the lines Styx cannot run,
each named with why in the report), and writes bench/peers/RESULTS-lua.md:
pass counts for both, SQL and replication tests left out of the ratio, and
the cause of each Styx failure. asynctnt's tests/files/app.lua is not in its
sdist: it comes from the asynctnt git repository at the tag of the installed
version (a local mirror if there is one, else GitHub).

Without --lua: each suite's Lua setup (tarantool-python's box.lua and admin snippets,
asynctnt's tests/files/app.lua, tarantool-driver's test/box.lua) has a Python
twin in bench/peers/apps/, and each suite's way of starting `tarantool` is
replaced by starting Styx (bench/peers/*_styx.py, bench/peers/styx_proc.py).
Failures are classified by bench/peers/classify.py; an unclassified one is a
Styx bug until shown otherwise.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
WORK = HERE / ".work"
PY = sys.executable
NODE_DRIVER = "3.0.6"
NODE_DEV = ["mocha@2", "chai@4", "sinon@3"]
# Tests of the Node suite never run here: this machine's tests send traffic
# only to its own loopback addresses, and touch no containers.
NODE_NOT_RUN = {
    "timeout should close the connection when timeout":
        "not run: connects to 192.0.0.0 (traffic off this machine)",
    "reconnecting should try to reconnect and then connect eventially":
        "not run: kills and starts docker containers",
    "multihost should try to connect to reserve hosts cyclically":
        "not run: kills and starts docker containers",
}
PYDEPS = ["python-dateutil", "dbapi-compliance==1.15.0"]
SUITE_TIMEOUT = 900

sys.path.insert(0, str(HERE))
from classify import classify  # noqa: E402 - after the sys.path entry that makes it importable


def log(*a: object) -> None:
    print("[peers]", *a, file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    log("$", " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


# -- sources -------------------------------------------------------------------------


def sdist_tree(dist: str, subdir: str) -> Path:
    """`subdir` of the PyPI sdist of the installed version of `dist`."""
    version = importlib.metadata.version(dist)
    dest = WORK / "src" / f"{dist}-{version}"
    if (dest / subdir).is_dir():
        return dest
    sdists = WORK / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    tgz = sdists / f"{dist}-{version}.tar.gz"
    if not tgz.exists():
        run([PY, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"{dist}=={version}", "-d", str(sdists)])
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz) as t:
        root = t.getnames()[0].split("/")[0]
        prefix = f"{root}/{subdir}/"
        members = [m for m in t.getmembers() if m.name.startswith(prefix)]
        for m in members:
            m.name = m.name[len(root) + 1:]
        t.extractall(dest, members=members, filter="data")
    # Its own (empty) pytest config: not this repository's pyproject.toml.
    (dest / "pytest.ini").write_text("[pytest]\n")
    return dest


def pydeps() -> Path:
    d = WORK / "pydeps"
    if not (d / ".done").exists():
        run([PY, "-m", "pip", "install", "-q", "--target", str(d), *PYDEPS])
        (d / ".done").write_text(" ".join(PYDEPS))
    return d


def node_tree() -> Path:
    d = WORK / "node"
    pkg = d / "node_modules" / "tarantool-driver"
    if not (pkg / "test" / "app.js").exists():
        d.mkdir(parents=True, exist_ok=True)
        (d / "package.json").write_text('{"private": true}\n')
        run(["npm", "install", "--no-audit", "--no-fund", f"tarantool-driver@{NODE_DRIVER}", *NODE_DEV],
            cwd=d)
    return pkg


def styx_tree(rev: str | None) -> Path:
    """This checkout, or `git archive REV` of it (for a "before" run)."""
    if rev is None:
        return REPO
    dest = WORK / f"styx-{rev}"
    if not (dest / "styx").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


ASYNCTNT_GIT = "https://github.com/igorcoding/asynctnt"
ASYNCTNT_MIRRORS = [Path("/work/.mirror/igorcoding+asynctnt/repo")]


def asynctnt_app_lua(src: Path) -> Path:
    """tests/files/app.lua of asynctnt's git tag v<installed version>, put
    where the suite reads it (the sdist does not ship it)."""
    version = importlib.metadata.version("asynctnt")
    dest = src / "tests" / "files" / "app.lua"
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    for git_dir in [Path(p) for p in os.environ.get("ASYNCTNT_GIT_DIR", "").split(os.pathsep) if p] + ASYNCTNT_MIRRORS:
        if git_dir.is_dir():
            r = subprocess.run(["git", "--git-dir", str(git_dir), "show", f"v{version}:tests/files/app.lua"],
                               capture_output=True)
            if r.returncode == 0:
                dest.write_bytes(r.stdout)
                return dest
    clone = WORK / "asynctnt-git"
    if not clone.is_dir():
        run(["git", "clone", "--bare", "--depth", "1", "--branch", f"v{version}", ASYNCTNT_GIT, str(clone)])
    dest.write_bytes(subprocess.run(["git", "--git-dir", str(clone), "show", f"v{version}:tests/files/app.lua"],
                                    check=True, capture_output=True).stdout)
    return dest


# -- running ---------------------------------------------------------------------------


def env_for(styx_root: Path, extra_path: list[Path]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in [*extra_path, HERE])
    env["STYX_PEERS_ROOT"] = str(styx_root)
    env["STYX_PEERS_PYTHON"] = PY
    env["STYX_PEERS_LOG_DIR"] = str(WORK / "logs")
    return env


def junit_results(path: Path) -> dict[str, tuple[str, str]]:
    """test id -> (pass|fail|skip, message); subtests fold into their test."""
    out: dict[str, tuple[str, str]] = {}
    if not path.exists():
        return out
    for tc in ET.parse(path).iter("testcase"):
        tid = f"{tc.get('classname')}::{tc.get('name')}"
        outcome, msg = "pass", ""
        for ch in tc:
            if ch.tag in ("failure", "error"):
                outcome = "fail"
                msg = (ch.get("message") or ch.text or "").strip()
                break
            if ch.tag == "skipped":
                outcome, msg = "skip", (ch.get("message") or "").strip()
        prev = out.get(tid)
        if prev is None or prev[0] != "fail":
            out[tid] = (outcome, msg)
    return out


def run_pytest_suite(name: str, cwd: Path, target: str, plugin: str | None, styx_root: Path,
                     label: str) -> dict[str, tuple[str, str]]:
    """plugin None: the suite as it is, starting `tarantool` its own way."""
    junit = WORK / f"{name}-{label}.xml"
    junit.unlink(missing_ok=True)
    cmd = [PY, "-m", "pytest", target, *(["-p", plugin] if plugin else []), "-p", "no:cacheprovider", "-q",
           "--timeout", "60", f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    log(f"{name} ({label}): pytest in {cwd}")
    try:
        subprocess.run(cmd, cwd=cwd, env=env_for(styx_root, [pydeps()]), timeout=SUITE_TIMEOUT,
                       stdout=open(WORK / f"{name}-{label}.out", "w"), stderr=subprocess.STDOUT)
    except subprocess.TimeoutExpired:
        log(f"{name}: suite timed out after {SUITE_TIMEOUT}s")
    return junit_results(junit)


def run_asynctnt(styx_root: Path, label: str) -> dict[str, tuple[str, str]]:
    src = sdist_tree("asynctnt", "tests")
    return run_pytest_suite("asynctnt", src, "tests", "asynctnt_styx", styx_root, label)


def run_tarantool_python(styx_root: Path, label: str) -> dict[str, tuple[str, str]]:
    src = sdist_tree("tarantool", "test")
    return run_pytest_suite("tarantool-python", src, "test/suites", "tarantool_python_styx",
                            styx_root, label)


def run_node(styx_root: Path, label: str) -> dict[str, tuple[str, str]]:
    pkg = node_tree()
    env = env_for(styx_root, [])
    os.environ.update({k: env[k] for k in ("STYX_PEERS_ROOT", "STYX_PEERS_PYTHON", "STYX_PEERS_LOG_DIR")})
    import styx_proc
    styx_proc.ROOT, styx_proc.LOG_DIR = styx_root, WORK / "logs"
    server = styx_proc.StyxProcess(HERE / "apps" / "node_tarantool_driver.py", 33013)
    results: dict[str, tuple[str, str]] = {}
    try:
        server.start()
    except RuntimeError as e:
        log(f"node-tarantool-driver: {e}")
        return {"(server start)": ("fail", str(e))}
    try:
        results = mocha_results(pkg, label)
    finally:
        server.stop()
    return results


def mocha_results(pkg: Path, label: str) -> dict[str, tuple[str, str]]:
    """Run test/app.js (a server is on 127.0.0.1:33013) and read its results."""
    results: dict[str, tuple[str, str]] = {}
    mocha = pkg.parent / ".bin" / "mocha"
    log(f"node-tarantool-driver ({label}): mocha in {pkg}")
    try:
        skip = "^(" + "|".join(re.escape(t) for t in NODE_NOT_RUN) + ")$"
        p = subprocess.run([str(mocha), "--reporter", "json-stream", "--grep", skip, "--invert",
                            "test/app.js"], cwd=pkg,
                           capture_output=True, text=True, timeout=SUITE_TIMEOUT)
        lines = p.stdout.splitlines()
    except subprocess.TimeoutExpired as e:
        lines = (e.stdout or b"").decode(errors="replace").splitlines()
    (WORK / f"node-tarantool-driver-{label}.out").write_text("\n".join(lines))
    for line in lines:
        if not line.startswith('["'):
            continue
        kind, d = json.loads(line)
        if kind in ("pass", "fail", "pending"):
            tid = d["fullTitle"]
            outcome = {"pass": "pass", "fail": "fail", "pending": "skip"}[kind]
            if tid in results and results[tid][0] == "fail":
                continue  # a hook failure reported on a test already failed
            results[tid] = (outcome, d.get("err", ""))
    results.update({t: ("skip", why) for t, why in NODE_NOT_RUN.items()})
    return results


# -- --lua: the suites' own Lua, on Tarantool and on Styx ------------------------------------


def run_asynctnt_lua(server: str, styx_root: Path) -> dict[str, tuple[str, str]]:
    src = sdist_tree("asynctnt", "tests")
    asynctnt_app_lua(src)
    plugin = None if server == "tarantool" else "asynctnt_styx_lua"
    return run_pytest_suite("asynctnt", src, "tests", plugin, styx_root, f"lua-{server}")


def run_tarantool_python_lua(server: str, styx_root: Path) -> dict[str, tuple[str, str]]:
    src = sdist_tree("tarantool", "test")
    plugin = None if server == "tarantool" else "tarantool_python_styx_lua"
    for stale in src.glob("var_*"):  # what a killed run left
        subprocess.run(["rm", "-rf", str(stale)], check=False)
    return run_pytest_suite("tarantool-python", src, "test/suites", plugin, styx_root, f"lua-{server}")


def run_node_lua(server: str, styx_root: Path) -> dict[str, tuple[str, str]]:
    """`tarantool test/box.lua` or `python -m styx serve test/box.lua`, in a
    fresh directory (the script listens on 33013, where app.js connects)."""
    import shutil

    import styx_proc
    pkg = node_tree()
    work = WORK / f"node-{server}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    script = work / "box.lua"
    shutil.copy(pkg / "test" / "box.lua", script)
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    log_file = open(WORK / "logs" / f"node-{server}.log", "w")
    if server == "tarantool":
        cmd = ["tarantool", str(script)]
        env = dict(os.environ)
    else:
        cmd = [PY, "-m", "styx", "serve", str(script)]
        env = dict(os.environ, PYTHONPATH=str(styx_root))
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    try:
        if not styx_proc.wait_greeting("127.0.0.1", 33013, 30):
            return {"(server start)": ("fail", f"{server} did not listen on 33013 (see {log_file.name})")}
        return mocha_results(pkg, f"lua-{server}")
    finally:
        styx_proc.terminate(proc)


LUA_SUITES = {
    "tarantool-python": run_tarantool_python_lua,
    "asynctnt": run_asynctnt_lua,
    "node-tarantool-driver": run_node_lua,
}


def removed_lines() -> dict[str, list[tuple[int, str, str]]]:
    """suite -> (line number, line, why) of each line Styx does not run."""
    from lua_scripts import ASYNCTNT, TARANTOOL_PYTHON, strip
    out: dict[str, list[tuple[int, str, str]]] = {}
    app = sdist_tree("asynctnt", "tests") / "tests" / "files" / "app.lua"
    if app.exists():
        import asynctnt.instance
        inst = asynctnt.instance.TarantoolInstance.__new__(asynctnt.instance.TarantoolSyncInstance)
        template = asynctnt.instance.TarantoolInstance._create_initlua_template(inst).replace(" " * 4, "")
        head = template.split("${applua}")[0]
        out["asynctnt (asynctnt.instance's init.lua template)"] = strip(head, ASYNCTNT)[1]
        out["asynctnt (tests/files/app.lua)"] = strip(app.read_text(), ASYNCTNT)[1]
    box = sdist_tree("tarantool", "test") / "test" / "suites" / "box.lua"
    if box.exists():
        out["tarantool-python (test/suites/box.lua)"] = strip(box.read_text(), TARANTOOL_PYTHON)[1]
    out["node-tarantool-driver (test/box.lua)"] = []  # test/box.lua runs whole on Styx
    return out


def lua_report(results: dict[str, dict[str, dict[str, tuple[str, str]]]], seconds: float) -> str:
    from classify import excluded
    tnt_version = subprocess.run(["tarantool", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    out = ["# Peer test suites with their own Lua: Tarantool 2.6 and Styx", "",
           f"Generated by `python bench/peers/run.py --lua` (see bench/peers/README.md). Run time: {seconds:.0f} s.",
           f"Tarantool: `{tnt_version}`. Styx: this checkout, serving each suite's own setup script.", "",
           "Tests left out of the ratio: SQL and replication tests (by test id, or failing on either "
           "server for want of SQL); they are counted in the last column.", "",
           "| suite | tests | Tarantool 2.6 passes | Styx passes | Styx passes of Tarantool's | ratio "
           "| left out (SQL/replication) |",
           "|---|---|---|---|---|---|---|"]
    totals = [0, 0, 0, 0]
    for suite, by_server in results.items():
        t, st = by_server["tarantool"], by_server["styx"]
        ids = set(t) | set(st)
        out_ids = {tid for tid in ids if excluded(suite, tid, t.get(tid, ("", ""))[1])
                   or excluded(suite, tid, st.get(tid, ("", ""))[1])}
        kept = ids - out_ids
        tp = {tid for tid in kept if t.get(tid, ("",))[0] == "pass"}
        sp = {tid for tid in kept if st.get(tid, ("",))[0] == "pass"}
        both = tp & sp
        ratio = len(both) / len(tp) if tp else 0.0
        out.append(f"| {SUITES[suite][1]()} | {len(kept)} | {len(tp)} | {len(sp)} | {len(both)} | "
                   f"{ratio:.1%} | {len(out_ids)} |")
        totals = [totals[0] + len(kept), totals[1] + len(tp), totals[2] + len(sp), totals[3] + len(both)]
    if results:
        ratio = totals[3] / totals[1] if totals[1] else 0.0
        out.append(f"| **all** | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} | **{ratio:.1%}** | |")
    out += ["", "\"Styx passes\" counts tests Tarantool 2.6 skips too (Styx greets as 3.0.0: tests gated "
            "on a version run on Styx only); the ratio counts only tests both pass, over Tarantool's passes.", ""]
    out += ["## Setup-script lines Styx does not run", "",
            "Each script runs unmodified on Styx except these lines (blank lines take their place, so "
            "line numbers stay):", ""]
    for where, rows in removed_lines().items():
        if not rows:
            out.append(f"- {where}: runs whole.")
            continue
        out.append(f"- {where}:")
        for n, line, why in rows:
            out.append(f"  - line {n} `{line.strip() or '(blank)'}`: {why}")
    out += ["", "## Tests Tarantool 2.6 passes and Styx fails, by cause", ""]
    for suite, by_server in results.items():
        t, st = by_server["tarantool"], by_server["styx"]
        fails = sorted((tid, st.get(tid, ("absent", "not run"))[1]) for tid, (o, _) in t.items()
                       if o == "pass" and st.get(tid, ("absent",))[0] != "pass"
                       and not excluded(suite, tid, st.get(tid, ("", ""))[1]) and not excluded(suite, tid, ""))
        by_cat: dict[str, int] = {}
        for tid, m in fails:
            cat = classify(suite, tid, m) or "UNCLASSIFIED (Styx?)"
            by_cat[cat] = by_cat.get(cat, 0) + 1
        out += [f"### {suite}: {len(fails)}", ""]
        if not fails:
            continue
        out += ["| cause | tests |", "|---|---|"]
        out += [f"| {c} | {n} |" for c, n in sorted(by_cat.items(), key=lambda kv: (-kv[1], kv[0]))]
        out += ["", "| test | cause | message |", "|---|---|---|"]
        out += [f"| `{tid}` | {classify(suite, tid, m) or 'UNCLASSIFIED (Styx?)'} | {short(m)} |" for tid, m in fails]
        out.append("")
    out += ["## Tests Tarantool 2.6 fails or skips and Styx passes", ""]
    for suite, by_server in results.items():
        t, st = by_server["tarantool"], by_server["styx"]
        extra = sorted(tid for tid, (o, _) in st.items() if o == "pass" and t.get(tid, ("absent",))[0] != "pass")
        kinds: dict[str, int] = {}
        for tid in extra:
            k = t.get(tid, ("absent",))[0]
            kinds[k] = kinds.get(k, 0) + 1
        out.append(f"- {suite}: {len(extra)} ({', '.join(f'{n} {k} on Tarantool' for k, n in sorted(kinds.items()))})")
    out.append("")
    return "\n".join(out)


def main_lua(suites: list[str], out_path: Path) -> None:
    t0 = time.monotonic()
    results: dict[str, dict[str, dict[str, tuple[str, str]]]] = {}
    for suite in suites:
        results[suite] = {server: LUA_SUITES[suite](server, REPO) for server in ("tarantool", "styx")}
    (WORK / "results-lua.json").write_text(json.dumps(results, indent=1))
    text = lua_report(results, time.monotonic() - t0)
    out_path.write_text(text + "\n")
    print("\n".join(line for line in text.split("\n## Tests Tarantool 2.6 fails")[0].split("\n")
                    if not line.startswith(("| `", "  - line"))))  # the file has each test and line
    log(f"wrote {out_path} in {time.monotonic() - t0:.0f} s")


SUITES = {
    "tarantool-python": (run_tarantool_python,
                         lambda: f"tarantool {importlib.metadata.version('tarantool')} (PyPI sdist test/)"),
    "asynctnt": (run_asynctnt, lambda: f"asynctnt {importlib.metadata.version('asynctnt')} (PyPI sdist tests/)"),
    "node-tarantool-driver": (run_node, lambda: f"tarantool-driver {NODE_DRIVER} (npm, test/app.js)"),
}


# -- the report --------------------------------------------------------------------------


def counts(res: dict[str, tuple[str, str]]) -> tuple[int, int, int]:
    c = {"pass": 0, "fail": 0, "skip": 0}
    for outcome, _ in res.values():
        c[outcome] += 1
    return c["pass"], c["fail"], c["skip"]


def short(msg: str, n: int = 110) -> str:
    line = " ".join(msg.split())
    return (line[:n] + "…" if len(line) > n else line).replace("|", "\\|")


def report(after: dict, before: dict | None, before_rev: str | None, seconds: float) -> str:
    out = ["# Peer test suites against Styx", "",
           "Generated by `make peers` (`python bench/peers/run.py --before "
           f"{before_rev or 'REV'}`); see bench/peers/README.md. Run time: {seconds:.0f} s.", ""]
    head = "| suite | tests |"
    sep = "|---|---|"
    if before is not None:
        head += f" before ({before_rev}): pass / fail / skip |"
        sep += "---|"
    head += " after: pass / fail / skip | failures: not Styx / Styx (unclassified) |"
    sep += "---|---|"
    out += [head, sep]
    for suite, res in after.items():
        p, f, s = counts(res)
        row = f"| {SUITES[suite][1]()} | {len(res)} |"
        if before is not None:
            bp, bf, bs = counts(before.get(suite, {}))
            row += f" {bp} / {bf} / {bs} |"
        styx = sum(1 for tid, (o, m) in res.items() if o == "fail" and classify(suite, tid, m) is None)
        row += f" {p} / {f} / {s} | {f - styx} / {styx} |"
        out.append(row)
    out += ["", "## Remaining failures, by cause", ""]
    for suite, res in after.items():
        fails = sorted((tid, m) for tid, (o, m) in res.items() if o == "fail")
        if not fails:
            continue
        by_cat: dict[str, int] = {}
        for tid, m in fails:
            cat = classify(suite, tid, m) or "UNCLASSIFIED (Styx?)"
            by_cat[cat] = by_cat.get(cat, 0) + 1
        out += [f"### {suite}", "", "| cause | tests |", "|---|---|"]
        out += [f"| {c} | {n} |" for c, n in sorted(by_cat.items(), key=lambda kv: (-kv[1], kv[0]))]
        out += ["", "| test | cause | message |", "|---|---|---|"]
        for tid, m in fails:
            cat = classify(suite, tid, m) or "UNCLASSIFIED (Styx?)"
            out.append(f"| `{tid}` | {cat} | {short(m)} |")
        out.append("")
    if before is not None:
        out += ["## Fixed since the \"before\" run", ""]
        for suite, res in after.items():
            fixed = sorted(tid for tid, (o, _) in res.items()
                           if o == "pass" and before.get(suite, {}).get(tid, ("", ""))[0] == "fail")
            out.append(f"- {suite}: {len(fixed)} tests" + (":" if fixed else ""))
            out += [f"  - `{t}`" for t in fixed]
        out += ["", "## Failing now, not failing before", "",
                "Tests a version gate skipped before (the greeting said 2.10.0, now 3.0.0) "
                "and that now run, or a flaky one; each is classified above.", ""]
        for suite, res in after.items():
            newly = sorted((tid, before.get(suite, {}).get(tid, ("absent", ""))[0])
                           for tid, (o, _) in res.items()
                           if o == "fail" and before.get(suite, {}).get(tid, ("", ""))[0] != "fail")
            out += [f"- {suite}: `{t}` (before: {b}; cause: "
                    f"{classify(suite, t, res[t][1]) or 'UNCLASSIFIED'})" for t, b in newly]
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", action="append", choices=list(SUITES))
    ap.add_argument("--before", metavar="REV", help="also run against this git revision's Styx")
    ap.add_argument("--lua", action="store_true",
                    help="the suites' own Lua setup, on Tarantool (PATH's `tarantool`) and on Styx; "
                         "writes RESULTS-lua.md")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    suites = args.suite or list(SUITES)
    WORK.mkdir(parents=True, exist_ok=True)
    if args.lua:
        main_lua(suites, Path(args.out or HERE / "RESULTS-lua.md"))
        return
    args.out = args.out or str(HERE / "RESULTS.md")
    t0 = time.monotonic()
    after = {s: SUITES[s][0](REPO, "after") for s in suites}
    before = None
    if args.before:
        root = styx_tree(args.before)
        before = {s: SUITES[s][0](root, "before") for s in suites}
    (WORK / "results.json").write_text(json.dumps({"after": after, "before": before}, indent=1))
    text = report(after, before, args.before, time.monotonic() - t0)
    Path(args.out).write_text(text + "\n")
    log(f"wrote {args.out} in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
