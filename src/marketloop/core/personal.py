"""Which stored columns a personal value becomes, and how: the one place importer, simulator and OneID agree on.

A source value such as a phone number is never stored as given: it becomes
an encrypted column (`phone_enc`), a keyed hash for exact lookup
(`phone_hash`), or both; a name also gives its family name in clear
(`name_prefix`) for prefix search. The hash `kind` separates equal strings
of different types; anyone who hashes an identifier to look it up (OneID,
the API) must use the same kind and the same normalisation
(`marketloop.core.identifiers`).
"""

from __future__ import annotations

from dataclasses import dataclass

from marketloop.core.bank import TableSpec

# Two-character (复姓) family names still in use; anything else is one character.
COMPOUND_SURNAMES = frozenset(
    {
        "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
        "宇文", "司徒", "令狐", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "百里",
        "呼延", "万俟", "申屠", "太史", "闻人", "澹台", "公羊", "赫连", "钟离", "宗政",
        "濮阳", "淳于", "单于", "太叔", "仲孙", "拓跋", "司空", "东郭", "第五", "梁丘",
        "左丘", "公冶", "谷梁", "乐正", "漆雕", "壤驷", "公良", "巫马", "鲜于", "闾丘",
    }
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class PersonalField:
    """A personal source value (`source`) and the stored columns derived from it."""

    source: str
    encrypted: str | None = None  # AES-GCM ciphertext, encryption context = this column's name
    hashed: str | None = None  # keyed hash of the normalised value
    hash_kind: str = ""
    family_name: str | None = None  # clear-text family name, for prefix search

    @property
    def derived(self) -> tuple[str, ...]:
        return tuple(c for c in (self.encrypted, self.hashed, self.family_name) if c is not None)


NAME = PersonalField(source="name", encrypted="name_enc", family_name="name_prefix")
PHONE = PersonalField(source="phone", encrypted="phone_enc", hashed="phone_hash", hash_kind="phone")
ID_CARD = PersonalField(source="id_card", hashed="id_card_hash", hash_kind="id_card")
EMAIL = PersonalField(source="email", encrypted="email_enc")
PERSONAL_FIELDS: tuple[PersonalField, ...] = (NAME, PHONE, ID_CARD, EMAIL)


def personal_fields(table: TableSpec) -> dict[str, PersonalField]:
    """The personal fields a table stores, by source name (a table with `phone_enc` and `phone_hash` takes `phone`)."""
    names = set(table.names)
    return {f.source: f for f in PERSONAL_FIELDS if f.source not in names and set(f.derived) <= names}


def family_name(name: str) -> str:
    """张三 → 张, 欧阳娜娜 → 欧阳; for a name in Latin letters, its first letter."""
    name = name.strip()
    return name[:2] if name[:2] in COMPOUND_SURNAMES else name[:1]
