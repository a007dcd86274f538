"""The customer dossier (客户档案) as PDF: base info, class, contacts, facts, history, lineage.

Seed 004 电子归档: "将系统内已审核的资料导出为PDF格式". Rendered with fpdf2 (pure Python, no
browser) in a CJK font that is embedded (subset) in every file: WenQuanYi Micro Hei from Debian's
``fonts-wqy-microhei`` (TrueType; ``make fonts``), else another installed CJK font.
"""

from __future__ import annotations

import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from warehouse.filing import customer_folder
from warehouse.naming import attachment_name

FONT_ENV = "CUSTOMER_ARCHIVE_CJK_FONT"
#: Fonts tried in order (Debian fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk). TrueType
#: outlines first: fpdf2 embeds them as CIDFontType2 with Identity-H, whose text every reader
#: extracts (pypdf garbles the CFF-keyed Noto CJK embedding with NUL bytes; poppler reads both).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
LIFECYCLE_ZH = {
    "potential": "潜在",
    "new": "新客户",
    "active": "活跃",
    "churned": "流失",
    "dormant": "休眠",
    "deleted_at_source": "已在来源删除",
}
TYPE_ZH = {"enterprise": "企业", "individual": "个人"}
CHANGE_ZH = {
    "created": "新建",
    "updated": "变更",
    "archived": "转入休眠档案",
    "reactivated": "恢复活跃",
}
DOSSIER_DOC_TYPE = "档案"


class FontNotFoundError(RuntimeError):
    """No CJK font to embed: install fonts-noto-cjk (``make fonts``) or set the font path."""


@dataclass(frozen=True)
class CjkFont:
    """A font file and, for a collection (.ttc), the index of its Simplified Chinese face."""

    path: Path
    index: int = 0


def find_cjk_font(configured: Path | str | None = None) -> CjkFont:
    """The CJK font to embed: ``configured``, ``$CUSTOMER_ARCHIVE_CJK_FONT``, else a system font.

    In a collection the Simplified Chinese face is chosen by its name (``… SC``).

    Raises:
        FontNotFoundError: none of the candidates exists.
    """
    explicit = configured or os.environ.get(FONT_ENV)
    candidates = [Path(explicit)] if explicit else [Path(p) for p in FONT_CANDIDATES]
    for path in candidates:
        if path.is_file():
            return CjkFont(path, _sc_index(path))
    where = str(candidates[0]) if explicit else ", ".join(FONT_CANDIDATES)
    raise FontNotFoundError(
        f"no CJK font found ({where}): run `make fonts` (apt fonts-noto-cjk) or set "
        f"${FONT_ENV} / filing.font to a .ttf/.otf/.ttc with Chinese glyphs"
    )


def subset_font(font: CjkFont, dossiers: Sequence[Dossier], folder: Path) -> CjkFont:
    """A TrueType subset of ``font`` with just the characters a batch of dossiers prints.

    fpdf2 parses the whole font for every document (about 0.5 s for a CJK font); a batch
    renders against a subset of the characters found in its data and in this module's labels
    (a few hundred glyphs), so each dossier costs a few milliseconds of font handling. Every
    document still embeds (its own subset of) the font.

    Args:
        font: the full font.
        dossiers: the batch.
        folder: where to write the subset (``.ttf`` or ``.otf``, same outline format).
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont

    chars = set(Path(__file__).read_text(encoding="utf-8")) | set(string.printable)
    for d in dossiers:
        chars.update("".join(_text(v) for v in d.customer.values()))
        for frame in (d.contacts, d.addresses, d.transactions, d.interactions, d.history,
                      d.lineage, d.events):  # fmt: skip
            for column in frame.columns:
                chars.update("".join(_text(v) for v in frame[column].unique()))
    source = TTFont(str(font.path), fontNumber=font.index, lazy=False)
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables = [*options.drop_tables, "FFTM"]  # FontForge timestamps: not needed
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes={ord(ch) for ch in chars})
    subsetter.subset(source)
    suffix = ".otf" if "CFF " in source else ".ttf"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{font.path.stem}-{font.index}-subset{suffix}"
    source.save(str(out))
    source.close()
    return CjkFont(out, 0)


def _sc_index(path: Path) -> int:
    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(path), lazy=True)
    try:
        for i, font in enumerate(collection.fonts):
            name = str(font["name"].getDebugName(1) or "")
            if name.endswith(" SC") or "SC" in name.split():
                return i
    finally:
        collection.close()
    return 0


@dataclass
class Dossier:
    """Everything one customer's dossier shows (frames already restricted to the customer)."""

    customer: dict[str, object]
    contacts: pd.DataFrame = field(default_factory=pd.DataFrame)
    addresses: pd.DataFrame = field(default_factory=pd.DataFrame)
    transactions: pd.DataFrame = field(default_factory=pd.DataFrame)
    interactions: pd.DataFrame = field(default_factory=pd.DataFrame)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    lineage: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def customer_id(self) -> str:
        """客户编号."""
        return str(self.customer["customer_id"])


def collect_dossiers(
    tables: Mapping[str, pd.DataFrame | None], customer_ids: Sequence[str]
) -> list[Dossier]:
    """Split the golden tables into one :class:`Dossier` per customer (missing ids skipped).

    Args:
        tables: ``customers``, ``contacts``, ``addresses``, ``transactions``, ``interactions``,
            ``customers_history``, ``attribute_lineage`` and optionally ``events`` (dormant
            archive events) — golden frames, any of them None.
        customer_ids: the customers wanted.

    Returns:
        Dossiers in the order of ``customer_ids``.
    """
    customers = tables.get("customers")
    if customers is None or customers.empty:
        return []
    wanted = [c for c in dict.fromkeys(customer_ids)]
    by_id = customers[customers["customer_id"].isin(wanted)].set_index("customer_id", drop=False)

    def part(name: str) -> dict[str, pd.DataFrame]:
        frame = tables.get(name)
        if frame is None or frame.empty:
            return {}
        frame = frame[frame["customer_id"].isin(wanted)]
        return {str(k): g for k, g in frame.groupby("customer_id", sort=False)}

    parts = {
        name: part(name)
        for name in (
            "contacts",
            "addresses",
            "transactions",
            "interactions",
            "customers_history",
            "attribute_lineage",
            "events",
        )
    }
    empty = pd.DataFrame()
    out = []
    for cid in wanted:
        if cid not in by_id.index:
            continue
        out.append(
            Dossier(
                customer=by_id.loc[cid].to_dict(),
                contacts=parts["contacts"].get(cid, empty),
                addresses=parts["addresses"].get(cid, empty),
                transactions=parts["transactions"].get(cid, empty),
                interactions=parts["interactions"].get(cid, empty),
                history=parts["customers_history"].get(cid, empty),
                lineage=parts["attribute_lineage"].get(cid, empty),
                events=parts["events"].get(cid, empty),
            )
        )
    return out


def dossier_path(root: Path, customer_id: str, on: date) -> Path:
    """``<root>/C20240315001-2026-Q4/C20240315001_档案_20261130.pdf`` (seed 004 naming)."""
    name = attachment_name(customer_id, DOSSIER_DOC_TYPE, on, "pdf")
    return root / customer_folder(customer_id, on) / name


def _text(value: object) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[arg-type]
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _date(value: object) -> str:
    text = _text(value)
    return text[:10] if text else ""


def render_dossier(dossier: Dossier, path: Path, font: CjkFont, on: date) -> Path:
    """Render one dossier PDF (A4, CJK font embedded), written via a temp file.

    Args:
        dossier: the customer's data.
        path: the target file.
        font: the CJK font (:func:`find_cjk_font`).
        on: the archive date printed on every page.

    Returns:
        ``path``.
    """
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    c = dossier.customer
    cid = dossier.customer_id

    class _Pdf(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("cjk", size=8)
            self.cell(
                0,
                6,
                f"客户档案 {cid} · 归档日期 {on.isoformat()} · 第 {self.page_no()} 页",
                align="C",
            )

    pdf = _Pdf(format="A4")
    pdf.set_title(f"客户档案 {cid}")
    pdf.set_author("customer-archive")
    pdf.set_creation_date(pd.Timestamp(on).to_pydatetime().astimezone())
    pdf.add_font("cjk", "", str(font.path), collection_font_number=font.index)
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 12, f"客户档案  {cid}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    pdf.cell(
        0,
        6,
        f"{_text(c.get('customer_name'))}　归档日期 {on.isoformat()}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    heading = FontFace(emphasis=None, fill_color=(225, 232, 240))

    def section(title: str) -> None:
        pdf.ln(3)
        pdf.set_font("cjk", size=13)
        pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=9)

    def table(
        headers: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[int]
    ) -> None:
        if not rows:
            pdf.cell(0, 6, "（无）", new_x="LMARGIN", new_y="NEXT")
            return
        with pdf.table(
            col_widths=tuple(widths), headings_style=heading, line_height=5.5, text_align="LEFT"
        ) as t:
            t.row(list(headers))
            for row in rows:
                t.row([_text(v) for v in row])

    region = "".join(
        dict.fromkeys(_text(c.get(k)) for k in ("province", "city", "district") if c.get(k))
    )
    section("一、基本信息")
    table(
        ["项目", "内容"],
        [
            ["客户编号", cid],
            ["客户名称", _text(c.get("customer_name"))],
            ["客户类型", TYPE_ZH.get(_text(c.get("customer_type")), _text(c.get("customer_type")))],
            ["统一社会信用代码", _text(c.get("credit_code"))],
            ["所属行业", _text(c.get("industry"))],
            ["联系人", _text(c.get("contact_name"))],
            ["联系电话", _text(c.get("phone"))],
            ["电子邮箱", _text(c.get("email"))],
            ["地址", _text(c.get("address"))],
            ["地址(省市区)", region],
            ["开户日期", _date(c.get("registered_date"))],
        ],
        (30, 70),
    )
    section("二、客户分类")
    tier = _text(c.get("tier"))
    table(
        ["项目", "内容"],
        [
            ["客户等级", f"{tier}类" if tier else ""],
            ["生命周期", LIFECYCLE_ZH.get(_text(c.get("lifecycle")), _text(c.get("lifecycle")))],
            ["近12个月合作金额", _text(c.get("revenue_12m"))],
            ["最近业务日期", _date(c.get("last_business_date"))],
            ["首次/最近出现", f"{_date(c.get('first_seen'))} / {_date(c.get('last_seen'))}"],
            [
                "来源系统数 / 记录数",
                f"{_text(c.get('source_count'))} / {_text(c.get('record_count'))}",
            ],
        ],
        (30, 70),
    )
    section("三、联系人")
    k = dossier.contacts
    table(
        ["联系人", "职务", "电话", "邮箱", "角色", "有效期", "来源"],
        [
            [
                r.get("contact_name"),
                r.get("contact_title"),
                r.get("phone"),
                r.get("email"),
                r.get("role"),
                f"{_date(r.get('valid_from'))}–{_date(r.get('valid_to'))}",
                r.get("source_systems"),
            ]
            for r in k.to_dict("records")
        ],
        (14, 10, 20, 24, 10, 22, 14),
    )
    if not dossier.addresses.empty:
        section("　地址")
        table(
            ["地址", "首次", "最近", "来源"],
            [
                [
                    r.get("address"),
                    _date(r.get("first_seen")),
                    _date(r.get("last_seen")),
                    r.get("source_systems"),
                ]
                for r in dossier.addresses.to_dict("records")
            ],
            (52, 16, 16, 16),
        )
    section("四、交易记录")
    t = dossier.transactions
    if not t.empty:
        t = t.sort_values("txn_date", kind="stable")
    table(
        ["合同/订单编号", "日期", "金额", "类型", "来源"],
        [
            [
                r.get("txn_id"),
                _date(r.get("txn_date")),
                r.get("txn_amount"),
                r.get("txn_type"),
                r.get("source_system"),
            ]
            for r in t.to_dict("records")
        ],
        (24, 18, 20, 18, 20),
    )
    section("五、交互记录")
    i = dossier.interactions
    if not i.empty:
        i = i.sort_values("interaction_date", kind="stable")
    table(
        ["记录日期", "渠道", "内容概述", "结果跟进", "来源"],
        [
            [
                _date(r.get("interaction_date")),
                r.get("channel"),
                r.get("subject"),
                r.get("outcome"),
                r.get("source_system"),
            ]
            for r in i.to_dict("records")
        ],
        (16, 14, 36, 20, 14),
    )
    section("六、变更历史（变更日期及原因）")
    rows: list[list[object]] = []
    h = dossier.history
    if not h.empty:
        for r in h.sort_values("valid_from", kind="stable").to_dict("records"):
            rows.append(
                [
                    _date(r.get("valid_from")),
                    _date(r.get("valid_to")),
                    CHANGE_ZH.get(_text(r.get("change_type")), r.get("change_type")),
                    r.get("change_reason"),
                    r.get("changed_attributes"),
                    r.get("closed_reason"),
                ]
            )
    for r in dossier.events.to_dict("records") if not dossier.events.empty else []:
        event = CHANGE_ZH.get(_text(r.get("event")), r.get("event"))
        rows.append([_date(r.get("event_date")), "", event, r.get("reason"), "", ""])
    rows.sort(key=lambda row: str(row[0]))
    table(
        ["生效日期", "失效日期", "类型", "变更原因", "变更字段", "关闭原因"],
        rows,
        (16, 16, 12, 26, 15, 15),
    )
    section("七、数据来源")
    lin = dossier.lineage
    if not lin.empty:
        lin = lin.sort_values("attribute", kind="stable")
    table(
        ["属性", "取值", "来源系统", "来源记录", "记录日期", "规则"],
        [
            [
                r.get("attribute"),
                r.get("value"),
                r.get("source_system"),
                r.get("source_record_id"),
                _date(r.get("record_date")),
                r.get("rule"),
            ]
            for r in lin.to_dict("records")
        ],
        (18, 28, 12, 12, 12, 18),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    pdf.output(str(temp))
    temp.replace(path)
    return path
