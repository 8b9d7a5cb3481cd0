"""The back office commits only through the unit of work (admin.base.unit_of_work / StaffModelView saves)."""

from __future__ import annotations

import re
from pathlib import Path

ADMIN = Path(__file__).resolve().parents[2] / "admin"
OWN_COMMIT = re.compile(r"\bsession\.(commit|rollback)\(|\bsavepoint\.commit\(")


def test_no_admin_module_commits_or_rolls_back_on_its_own():
    offenders = [
        f"{path.relative_to(ADMIN)}:{number}: {line.strip()}"
        for path in sorted(ADMIN.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OWN_COMMIT.search(line)
    ]
    assert offenders == []


def test_a_form_save_runs_its_after_commit_work(app, as_role, db, monkeypatch):
    # Given a category save that registers work for after the commit (as a gateway call would)
    from ecom.catalog import services
    from ecom.unit_of_work import after_commit

    ran = []
    prepare = services.prepare_category

    def prepare_and_register(category):
        after_commit(lambda: ran.append(category.name))
        return prepare(category)

    monkeypatch.setattr(services, "prepare_category", prepare_and_register)

    # when the form is saved
    response = as_role("admin").post("/admin/category/new/", data={"name": "After Commit"})

    # then the save went through ecom's unit of work, which ran the task once committed
    assert response.status_code == 302
    assert ran == ["After Commit"]
