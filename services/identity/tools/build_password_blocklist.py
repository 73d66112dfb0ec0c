"""Rebuild ``egov_identity/domain/common_passwords.json``, the blocklist shipped with identity.

Sources (public, cited in the output file too):

1. Django's ``django/contrib/auth/common-passwords.txt.gz``: the 20,000 most common passwords
   from breach corpora compiled by Royce Williams
   (https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce), as shipped in the
   Django wheel on PyPI (BSD-3-Clause).
2. zxcvbn-python's ``zxcvbn/frequency_lists.py``, list ``passwords``: the 30,000 most frequent
   passwords of Mark Burnett's 10 million password corpus (xato.net, 2015), as shipped in the
   zxcvbn wheel on PyPI (MIT).
3. A few famous example passwords that people copy from articles and comics (xkcd 936 ...).

Every entry is stored as :func:`egov_identity.domain.password_policy.blocklist_entries` compares
it (folded: ``Password123!`` and ``p@ssword`` are one entry, ``password``), so the file stays
small (about 25,000 entries) and the check is one set look-up.

Usage (both wheels from ``pip download --no-deps django==5.2.19 zxcvbn==4.5.0``)::

    python services/identity/tools/build_password_blocklist.py \
        django-5.2.19-py3-none-any.whl zxcvbn-4.5.0-py2.py3-none-any.whl
"""

from __future__ import annotations

import ast
import gzip
import json
import sys
import zipfile
from pathlib import Path

from egov_identity.domain.password_policy import blocklist_entries

OUTPUT = (Path(__file__).resolve().parents[1] / "egov_identity" / "domain"
          / "common_passwords.json")

#: Published as examples, hence tried first by anyone guessing.
FAMOUS_EXAMPLES = (
    "correct horse battery staple",  # xkcd 936, "Password Strength" (2011)
    "Tr0ub4dor&3",  # the same comic's counter-example
    "the quick brown fox jumps over the lazy dog",
    "lorem ipsum dolor sit amet",
    "to be or not to be that is the question",
    "may the force be with you",
    "open sesame",
    "let me in please",
    "changeme please",
)


def _django_passwords(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        data = z.read("django/contrib/auth/common-passwords.txt.gz")
    return gzip.decompress(data).decode("utf-8").split()


def _zxcvbn_passwords(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        source = z.read("zxcvbn/frequency_lists.py").decode("utf-8")
    # FREQUENCY_LISTS = {"passwords": "123456,password,...".split(","), ...}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (isinstance(key, ast.Constant) and key.value == "passwords"
                        and isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                        and isinstance(value.func.value, ast.Constant)):
                    return str(value.func.value.value).split(",")
    raise SystemExit("zxcvbn wheel: no 'passwords' list in frequency_lists.py")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    django_wheel, zxcvbn_wheel = (Path(a) for a in argv)
    lines = [*_django_passwords(django_wheel), *_zxcvbn_passwords(zxcvbn_wheel),
             *FAMOUS_EXAMPLES]
    entries = sorted(blocklist_entries(lines))
    document = {
        "description": "Common and breached passwords, folded as egov_identity.domain."
                       "password_policy.fold compares them; rebuilt by services/identity/tools/"
                       "build_password_blocklist.py.",
        "sources": [
            {"name": f"Django {django_wheel.name}: django/contrib/auth/common-passwords.txt.gz",
             "origin": "the 20,000 most common passwords from breach corpora, compiled by "
                       "Royce Williams, https://gist.github.com/roycewilliams/"
                       "226886fd01572964e1431ac8afc999ce",
             "license": "BSD-3-Clause (Django)"},
            {"name": f"zxcvbn {zxcvbn_wheel.name}: frequency_lists.py 'passwords'",
             "origin": "the 30,000 most frequent passwords of Mark Burnett's 10 million password "
                       "corpus (xato.net, 2015)",
             "license": "MIT (zxcvbn-python)"},
            {"name": "famous example passwords", "origin": "; ".join(FAMOUS_EXAMPLES),
             "license": "n/a"},
        ],
        "entries": entries,
    }
    with OUTPUT.open("w", encoding="utf-8") as f:
        json.dump(document, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{OUTPUT}: {len(entries)} entries from {len(lines)} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
