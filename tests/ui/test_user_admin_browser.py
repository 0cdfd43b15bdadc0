"""The administrator's user pages in a real browser: the list with its add form, a refused add
with its errors at the fields, the added user, and a user's edit page with groups as checkboxes
by kind, each passing axe-core's WCAG 2.1 A/AA rules in Japanese and English, with screenshots."""

from __future__ import annotations

from sqlalchemy import select

from engine.models import User
from tests.ui.test_browser import browser_page, check_page, chromium, server, shot, sign_in, switch_language

__all__ = ["browser_page", "chromium", "server"]  # fixtures used by the tests below


def test_an_administrator_adds_a_user_with_checkboxes(browser_page, session) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    page = browser_page
    sign_in(page, "kanri.kato")
    page.goto("/admin/users")
    check_page(page)
    shot(page, "admin-users")

    form = page.locator("#add-user")
    form.get_by_label("ユーザー名").fill("Shinki Tanaka")
    form.get_by_label("初期パスワード").fill("short")
    form.get_by_role("button", name="ユーザーを追加する").click()
    expect(page.locator("#new-error-summary")).to_be_visible()
    expect(page.locator("#new-name-error")).to_contain_text("半角の英小文字")
    expect(page.locator("#new-display_name-error")).to_contain_text("氏名を入力してください")
    expect(page.locator("#new-password-error")).to_contain_text("10 文字以上")
    expect(page.locator("#new-groups-error")).to_contain_text("一つ以上選んでください")
    check_page(page)
    shot(page, "admin-users-errors")

    form = page.locator("#add-user")
    form.get_by_label("ユーザー名").fill("shinki.tanaka")
    form.get_by_label("氏名").fill("田中 新規")
    form.get_by_label("初期パスワード").fill("correct horse battery")
    form.get_by_role("group", name="連携担当の課").get_by_label("住宅課").check()
    form.get_by_role("group", name="つなぎ元の機関").get_by_label("地域包括支援センター").check()
    form.get_by_role("button", name="ユーザーを追加する").click()
    expect(page.locator(".flash--success")).to_contain_text("shinki.tanaka を追加しました")
    session.rollback()  # a fresh read: the server committed in its own session
    added = session.scalar(select(User).where(User.name == "shinki.tanaka"))
    assert sorted(added.group_ids) == ["hokatsu-center", "jutaku"] and added.roles == ["staff"]

    page.get_by_role("link", name="shinki.tanaka を編集").click()
    expect(page.locator("#edit-group-jutaku")).to_be_checked()
    page.get_by_role("group", name="事務局・関係課").get_by_label("長寿安心課").check()
    page.get_by_role("group", name="連携担当の課").get_by_label("住宅課").uncheck()
    check_page(page)
    shot(page, "admin-user-edit")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash--success")).to_contain_text("shinki.tanaka を更新しました")
    session.rollback()  # a fresh read: the server committed in its own session
    assert sorted(session.scalar(select(User).where(User.name == "shinki.tanaka")).group_ids) == [
        "choju-anshin", "hokatsu-center"]

    switch_language(page, "en")
    page.goto("/admin/users/shinki.tanaka")
    check_page(page, "en")
    page.goto("/admin/users")
    check_page(page, "en")
    shot(page, "admin-users-en")
