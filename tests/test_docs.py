"""README.md's SQL reference runs as written, and documents every registered function."""

import os
import re
import sqlite3

from test_extension import FUNCTIONS

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def reference_blocks():
    text = open(README, encoding="utf-8").read()
    section = text.split("## SQL function reference", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def render(row):
    return "|".join("NULL" if v is None else str(v) for v in row)


def test_reference_examples_run_as_documented(ext_path):
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.enable_load_extension(True)
    conn.load_extension(ext_path)
    checked = 0
    for block in reference_blocks():
        for line in block.splitlines():
            sql, _, want = line.partition("--")
            sql, want = sql.strip(), want.strip().replace("\\n", "\n")
            if not sql:
                continue
            rows = conn.execute(sql).fetchall()
            got = "\n".join(render(r) for r in rows)
            assert got == want, f"{sql}\n  documented {want!r}\n  got        {got!r}"
            checked += 1
    assert checked > 50


def test_every_function_is_documented():
    documented = "\n".join(reference_blocks())
    missing = []
    for name in sorted(os.listdir(FUNCTIONS)):
        for line in open(os.path.join(FUNCTIONS, name), encoding="utf-8"):
            fn = line.split("#")[0].strip().removeprefix("table ").strip()
            if fn and not re.search(rf"\b{fn}\b", documented):
                missing.append(fn)
    assert not missing, f"undocumented SQL functions: {missing}"
