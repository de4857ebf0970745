"""Deterministic sample rows for the blazz demo database (the schema before the Web.js migration).

The rows fit both ``demo/blazz_schema.sqlite.sql`` and ``tests/sql/blazz_schema.mysql.sql``: every
table's rows carry every column, with plain values only (``str``, ``int``, ``None``; timestamps as
``'YYYY-MM-DD HH:MM:SS'`` strings; JSON as text). So one generic SQLAlchemy Core insert loads them
into either database::

    for name, rows in sample_rows().items():
        cols = rows[0].keys()
        conn.execute(sa.table(name, *[sa.column(c) for c in cols]).insert(), rows)

Ids are explicit, and the dict is in ``TABLE_ORDER``, which inserts parents before children.

A few properties the demo audits lean on:

* one connected WhatsApp session per workspace (3 of 6), the others disconnected, scanning a QR
  code or failed;
* every chat belongs to a contact of its own workspace, so ``chats.workspace_id`` (which has no
  foreign key) has no orphans to begin with;
* contact ids run 1..400 and chats are spread over nearly all of them, so deleting the contacts
  whose id is a multiple of 10 (the faulty migration) also loses chats through the cascade;
* ``contacts.latest_chat_created_at`` agrees with the chats.
"""

from __future__ import annotations

import calendar
import json
import random
import uuid
from datetime import datetime, timedelta

__all__ = ["TABLE_ORDER", "sample_rows"]

Row = dict[str, object]

#: Insertion order that satisfies every foreign key of the pre-change schema.
TABLE_ORDER: tuple[str, ...] = (
    "workspaces",
    "users",
    "contact_groups",
    "contacts",
    "whatsapp_sessions",
    "chats",
    "templates",
    "campaigns",
    "jobs",
    "failed_jobs",
    "migrations",
)

# The moment the pre-migration backup was taken; nothing in the sample is later than this.
_SNAPSHOT_AT = datetime(2025, 10, 22, 11, 9, 46)

_WORKSPACES = (
    # name, timezone, share of the contacts
    ("Toko Batik Sekar", "Asia/Jakarta", 0.45),
    ("Klinik Sehat Prima", "Asia/Jakarta", 0.35),
    ("Kopi Nusantara Roastery", "Asia/Makassar", 0.20),
)

_FIRST_NAMES = (
    "Adi", "Ayu", "Bayu", "Budi", "Citra", "Dewi", "Dimas", "Eka", "Fajar", "Fitri", "Gilang",
    "Hana", "Indra", "Intan", "Joko", "Kartika", "Lestari", "Made", "Nadia", "Nur", "Putri",
    "Rahmat", "Rani", "Rizky", "Sari", "Siti", "Taufik", "Tika", "Wahyu", "Yoga", "Yusuf", "Zahra",
)
_LAST_NAMES = (
    "Pratama", "Saputra", "Wijaya", "Hidayat", "Santoso", "Kusuma", "Lestari", "Nugroho",
    "Setiawan", "Wibowo", "Utami", "Siregar", "Harahap", "Gunawan", "Halim", "Tanjung",
)

_INBOUND_TEXTS = (
    "Halo, apakah stok masih ada?",
    "Berapa ongkir ke Bandung?",
    "Terima kasih, barang sudah sampai",
    "Bisa minta katalog terbaru?",
    "Saya mau reschedule jadwal besok",
    "Apakah buka hari Minggu?",
    "Ok, saya transfer sekarang",
    "Hi, is this still available?",
)
_OUTBOUND_TEXTS = (
    "Halo kak, stok masih tersedia ya",
    "Pesanan Anda sudah dikirim, nomor resi terlampir",
    "Terima kasih sudah menghubungi kami",
    "Jadwal Anda sudah kami ubah",
    "Berikut katalog terbaru kami",
    "Mohon ditunggu, kami cek dulu",
)

_MIGRATIONS = (
    "2014_10_12_000000_create_users_table",
    "2014_10_12_100000_create_password_reset_tokens_table",
    "2019_08_19_000000_create_failed_jobs_table",
    "2019_12_14_000001_create_personal_access_tokens_table",
    "2023_05_17_000001_create_workspaces_table",
    "2023_05_17_000002_create_contact_groups_table",
    "2023_05_17_000003_create_contacts_table",
    "2023_05_17_000004_create_chats_table",
    "2023_05_17_000005_create_templates_table",
    "2023_05_17_000006_create_campaigns_table",
    "2023_05_18_000001_create_jobs_table",
    "2023_06_02_101500_add_deleted_by_to_chats_table",
    "2023_09_14_083000_add_is_favorite_to_contacts_table",
    "2024_01_10_120000_add_ai_assistance_enabled_to_contacts_table",
    "2024_03_05_090000_add_fulltext_index_to_contacts_table",
    "2024_11_20_000000_add_soft_deletes_to_workspaces_table",
    "2025_01_08_000000_add_latest_chat_created_at_to_contacts_table",
    "2025_10_13_000000_create_whatsapp_sessions_table",
    "2025_10_13_000001_add_whatsapp_session_id_to_chats_table",
    "2025_10_13_000002_migrate_existing_whatsapp_credentials",
)
# Laravel batch number of each migration above: one batch per deployment.
_MIGRATION_BATCHES = (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8)


def sample_rows(seed: int = 7) -> dict[str, list[Row]]:
    """Return the sample rows of every pre-change table, keyed by table, in ``TABLE_ORDER``.

    The same ``seed`` always gives the same rows. Sizes: 3 workspaces, 12 users, 9 contact
    groups, 400 contacts, 6 WhatsApp sessions (3 connected), 1500 chats, 4 templates,
    5 campaigns, 40 queued jobs, 3 failed jobs and 20 migrations.
    """
    rng = random.Random(seed)
    rows: dict[str, list[Row]] = {}
    rows["workspaces"] = _workspaces(rng)
    rows["users"] = _users(rng)
    rows["contact_groups"] = _contact_groups(rng)
    rows["contacts"] = _contacts(rng, rows["contact_groups"])
    rows["whatsapp_sessions"] = _whatsapp_sessions(rng)
    rows["chats"] = _chats(rng, rows["contacts"], rows["whatsapp_sessions"])
    rows["templates"] = _templates(rng)
    rows["campaigns"] = _campaigns(rng, rows["contact_groups"])
    rows["jobs"] = _jobs(rng)
    rows["failed_jobs"] = _failed_jobs(rng)
    rows["migrations"] = [
        {"id": i, "migration": name, "batch": batch}
        for i, (name, batch) in enumerate(zip(_MIGRATIONS, _MIGRATION_BATCHES, strict=True), start=1)
    ]
    assert tuple(rows) == TABLE_ORDER
    return rows


# --- helpers ---------------------------------------------------------------------------------


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _unix(moment: datetime) -> int:
    return calendar.timegm(moment.timetuple())


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.randint(0, int((end - start).total_seconds())))


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _token(rng: random.Random, length: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _owner(workspace_id: int) -> int:
    # Users 1-3 created workspaces 1-3; the rest are agents, three per workspace.
    return workspace_id


def _agents(workspace_id: int) -> list[int]:
    return [workspace_id, *(4 + (workspace_id - 1) * 3 + k for k in range(3))]


# --- tables ----------------------------------------------------------------------------------


def _workspaces(rng: random.Random) -> list[Row]:
    result = []
    for i, (name, timezone, _share) in enumerate(_WORKSPACES, start=1):
        created = datetime(2023, 5 + 2 * i, 3 * i, 9, 30) + timedelta(minutes=rng.randint(0, 600))
        result.append({
            "id": i,
            "uuid": _uuid(rng),
            "identifier": _token(rng, 16, "abcdefghijklmnopqrstuvwxyz0123456789"),
            "name": name,
            "address": f"Jl. Merdeka No. {rng.randint(1, 200)}, Indonesia",
            "metadata": json.dumps({"billing_plan": rng.choice(["starter", "business"]), "locale": "id"}),
            "timezone": timezone,
            "created_by": _owner(i),
            "created_at": _ts(created),
            "updated_at": _ts(_between(rng, created, _SNAPSHOT_AT)),
            "deleted_at": None,
            "deleted_by": None,
        })
    return result


def _users(rng: random.Random) -> list[Row]:
    result = []
    for i in range(1, 13):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        created = _between(rng, datetime(2023, 5, 1), datetime(2025, 6, 1))
        result.append({
            "id": i,
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}{i}@example.com",
            "avatar": None,
            "role": "admin" if i == 1 else "user",
            "phone": f"+628{rng.randint(100_000_000, 999_999_999)}",
            "address": None,
            "email_verified_at": _ts(created + timedelta(minutes=rng.randint(1, 90))),
            "password": "$2y$12$" + _token(rng, 53, _B64 + "./"),
            "status": 0 if i == 12 else 1,
            "remember_token": _token(rng, 60, _B64) if rng.random() < 0.5 else None,
            "created_at": _ts(created),
            "updated_at": _ts(created),
            "deleted_at": None,
        })
    return result


def _contact_groups(rng: random.Random) -> list[Row]:
    result: list[Row] = []
    for workspace_id in range(1, len(_WORKSPACES) + 1):
        for name in ("Pelanggan VIP", "Newsletter", "Leads"):
            created = _between(rng, datetime(2024, 1, 1), datetime(2024, 12, 31))
            result.append({
                "id": len(result) + 1,
                "uuid": _uuid(rng),
                "workspace_id": workspace_id,
                "name": name,
                "created_by": _owner(workspace_id),
                "created_at": _ts(created),
                "updated_at": _ts(created),
                "deleted_at": None,
            })
    return result


def _contacts(rng: random.Random, groups: list[Row]) -> list[Row]:
    shares = [share for _name, _tz, share in _WORKSPACES]
    phones: set[str] = set()
    result = []
    for i in range(1, 401):
        workspace_id = rng.choices(range(1, len(_WORKSPACES) + 1), weights=shares)[0]
        while True:
            # Mostly Indonesian mobiles, a few from neighbouring countries.
            prefix = rng.choices(["+628", "+601", "+659"], weights=[90, 6, 4])[0]
            phone = f"{prefix}{rng.randint(10_000_000, 9_999_999_999)}"
            if phone not in phones:
                phones.add(phone)
                break
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        own_groups = [g["id"] for g in groups if g["workspace_id"] == workspace_id]
        created = _between(rng, datetime(2024, 1, 15), datetime(2025, 9, 30))
        result.append({
            "id": i,
            "uuid": _uuid(rng),
            "workspace_id": workspace_id,
            "contact_group_id": rng.choice(own_groups) if rng.random() < 0.6 else None,
            "first_name": first,
            "last_name": last if rng.random() < 0.9 else None,
            "phone": phone,
            "email": f"{first.lower()}{i}@mail.example" if rng.random() < 0.4 else None,
            "latest_chat_created_at": None,  # filled in from the chats
            "avatar": None,
            "address": None,
            "metadata": json.dumps({"source": rng.choice(["whatsapp", "import", "manual"])}),
            "is_favorite": 1 if rng.random() < 0.08 else 0,
            "ai_assistance_enabled": 1 if rng.random() < 0.25 else 0,
            "created_by": rng.choice(_agents(workspace_id)),
            "created_at": _ts(created),
            "updated_at": _ts(_between(rng, created, _SNAPSHOT_AT)),
            "deleted_at": _ts(_between(rng, created, _SNAPSHOT_AT)) if rng.random() < 0.02 else None,
        })
    return result


def _whatsapp_sessions(rng: random.Random) -> list[Row]:
    # Two per workspace: the primary one is connected, the second is in some other state.
    plan = (
        (1, "meta", "connected"), (1, "webjs", "disconnected"),
        (2, "webjs", "connected"), (2, "webjs", "qr_scanning"),
        (3, "meta", "connected"), (3, "webjs", "failed"),
    )
    result = []
    for i, (workspace_id, provider, status) in enumerate(plan, start=1):
        created = datetime(2025, 10, 13, 8, 0) + timedelta(minutes=rng.randint(0, 300))
        connected = status == "connected"
        last_activity = _between(rng, datetime(2025, 10, 21), _SNAPSHOT_AT) if connected else None
        result.append({
            "id": i,
            "uuid": _uuid(rng),
            "workspace_id": workspace_id,
            "session_id": f"{provider}_{workspace_id}_{_token(rng, 12, 'abcdef0123456789')}",
            "phone_number": None if status == "qr_scanning" else f"+628{rng.randint(10**8, 10**9 - 1)}",
            "provider_type": provider,
            "status": status,
            "qr_code": "2@" + _token(rng, 80, _B64 + "+/=,") if status == "qr_scanning" else None,
            "is_primary": 1 if connected else 0,
            "is_active": 0 if status == "failed" else 1,
            "last_activity_at": _ts(last_activity) if last_activity else None,
            "last_connected_at": (
                _ts(last_activity - timedelta(hours=rng.randint(1, 30))) if last_activity else None
            ),
            "metadata": json.dumps(
                {"platform": "android" if connected else None, "reconnect_attempts": rng.randint(0, 3)}
            ),
            "created_by": _owner(workspace_id),
            "created_at": _ts(created),
            "updated_at": _ts(last_activity or created),
            "deleted_at": None,
        })
    return result


def _chats(rng: random.Random, contacts: list[Row], sessions: list[Row]) -> list[Row]:
    by_workspace: dict[int, list[Row]] = {}
    for s in sessions:
        by_workspace.setdefault(_int(s["workspace_id"]), []).append(s)

    drafts: list[tuple[datetime, Row]] = []
    for _ in range(1500):
        contact = rng.choice(contacts)
        workspace_id = _int(contact["workspace_id"])
        primary, other = by_workspace[workspace_id]
        roll = rng.random()
        # Chats from before sessions existed, or from a session deleted since, have no session.
        session_id = primary["id"] if roll < 0.78 else other["id"] if roll < 0.88 else None
        joined = datetime.strptime(str(contact["created_at"]), "%Y-%m-%d %H:%M:%S")
        since = max(joined, datetime(2025, 4, 1))
        created = _between(rng, since, _SNAPSHOT_AT)
        kind = rng.choices(["inbound", "outbound", None], weights=[55, 44, 1])[0]
        is_media = rng.random() < 0.12
        if kind == "inbound":
            status, body = "delivered", rng.choice(_INBOUND_TEXTS)
        elif kind == "outbound":
            status = rng.choices(["sent", "delivered", "read", "failed"], weights=[10, 30, 55, 5])[0]
            body = rng.choice(_OUTBOUND_TEXTS)
        else:  # the column is nullable; a few rows from an old API client never set it
            status, body = "pending", rng.choice(_OUTBOUND_TEXTS)
        # Inbound messages older than two days have been opened; recent ones only sometimes.
        unread = kind == "inbound" and created > _SNAPSHOT_AT - timedelta(days=2) and rng.random() < 0.5
        message: dict[str, object] = (
            {"type": "image", "image": {"caption": body, "mime_type": "image/jpeg"}}
            if is_media else {"type": "text", "text": {"body": body}}
        )
        deleted = rng.random() < 0.01
        drafts.append((created, {
            "workspace_id": workspace_id,
            "whatsapp_session_id": session_id,
            "wam_id": None if status in ("failed", "pending") else "wamid." + _token(rng, 48, _B64),
            "contact_id": contact["id"],
            "type": kind,
            "metadata": json.dumps(message, ensure_ascii=False),
            "media_id": rng.randint(1, 900) if is_media else None,
            "status": status,
            "is_read": 0 if unread else 1,
            "deleted_by": rng.choice(_agents(workspace_id)) if deleted else None,
            "deleted_at": _ts(_between(rng, created, _SNAPSHOT_AT)) if deleted else None,
            "created_at": _ts(created),
            "updated_at": _ts(min(created + timedelta(seconds=rng.randint(0, 3600)), _SNAPSHOT_AT)),
        }))

    # Ids follow time, as they do in the real table.
    drafts.sort(key=lambda d: d[0])
    result = []
    latest: dict[object, str] = {}
    for i, (_created, draft) in enumerate(drafts, start=1):
        result.append({"id": i, "uuid": _uuid(rng), **draft})
        latest[draft["contact_id"]] = str(draft["created_at"])
    for contact in contacts:
        contact["latest_chat_created_at"] = latest.get(contact["id"])
    return result


def _templates(rng: random.Random) -> list[Row]:
    plan = (
        (1, "promo_lebaran", "MARKETING", "id", "APPROVED"),
        (1, "order_shipped", "UTILITY", "id", "APPROVED"),
        (2, "appointment_reminder", "UTILITY", "en_US", "APPROVED"),
        (3, "new_menu_launch", "MARKETING", "id", "PENDING"),
    )
    result = []
    for i, (workspace_id, name, category, language, status) in enumerate(plan, start=1):
        created = _between(rng, datetime(2025, 2, 1), datetime(2025, 8, 1))
        result.append({
            "id": i,
            "uuid": _uuid(rng),
            "workspace_id": workspace_id,
            "meta_id": str(rng.randint(10**14, 10**15 - 1)),
            "name": name,
            "category": category,
            "language": language,
            "metadata": json.dumps({
                "name": name, "language": language, "category": category,
                "components": [{"type": "BODY", "text": "Halo {{1}}, " + name.replace("_", " ")}],
            }),
            "status": status,
            "created_by": _owner(workspace_id),
            "created_at": _ts(created),
            "updated_at": _ts(created + timedelta(hours=rng.randint(1, 48))),
            "deleted_at": None,
        })
    return result


def _campaigns(rng: random.Random, groups: list[Row]) -> list[Row]:
    plan = (
        # workspace, name, template id (None: template since removed), status
        (1, "Lebaran Sale 2025", 1, "completed"),
        (1, "Shipping updates October", 2, "ongoing"),
        (2, "Check-up reminders", 3, "scheduled"),
        (2, "Old newsletter", None, "completed"),
        (3, "Menu launch teaser", 4, "pending"),
    )
    result = []
    for i, (workspace_id, name, template_id, status) in enumerate(plan, start=1):
        created = _between(rng, datetime(2025, 8, 1), datetime(2025, 10, 15))
        own_groups = [g["id"] for g in groups if g["workspace_id"] == workspace_id]
        scheduled = created + timedelta(days=rng.randint(0, 10), hours=rng.randint(0, 23))
        result.append({
            "id": i,
            "uuid": _uuid(rng),
            "workspace_id": workspace_id,
            "name": name,
            "template_id": template_id,
            "contact_group_id": rng.choice(own_groups),
            "metadata": json.dumps({"header": None, "body": ["{{contact.first_name}}"]}),
            "status": status,
            "scheduled_at": _ts(scheduled),
            "created_by": _owner(workspace_id),
            "deleted_by": None,
            "created_at": _ts(created),
            "updated_at": _ts(min(scheduled, _SNAPSHOT_AT)),
            "deleted_at": None,
        })
    return result


def _job_payload(rng: random.Random, job_class: str, attempts: int) -> str:
    return json.dumps({
        "uuid": _uuid(rng),
        "displayName": job_class,
        "job": "Illuminate\\Queue\\CallQueuedHandler@call",
        "maxTries": 3,
        "maxExceptions": None,
        "failOnTimeout": False,
        "backoff": None,
        "timeout": 120,
        "retryUntil": None,
        "data": {"commandName": job_class, "command": f"O:{len(job_class)}:\"{job_class}\":1:{{...}}"},
        "attempts": attempts,
    })


def _jobs(rng: random.Random) -> list[Row]:
    queues = (
        ("campaign-messages", "App\\Jobs\\SendCampaignJob", 22),
        ("default", "App\\Jobs\\ProcessSingleCampaignLogJob", 10),
        ("whatsapp-webhooks", "App\\Jobs\\ProcessWhatsAppWebhookJob", 8),
    )
    start = _SNAPSHOT_AT - timedelta(minutes=45)
    result = []
    for queue, job_class, weight in queues:
        for _ in range(weight):
            created = _between(rng, start, _SNAPSHOT_AT)
            reserved = rng.random() < 0.15
            attempts = 1 if reserved else 0
            delay = rng.choice([0, 0, 0, 60, 300])
            result.append({
                "queue": queue,
                "payload": _job_payload(rng, job_class, attempts),
                "attempts": attempts,
                "reserved_at": _unix(created) + rng.randint(1, 30) if reserved else None,
                "available_at": _unix(created) + delay,
                "created_at": _unix(created),
            })
    result.sort(key=lambda r: (r["created_at"], r["queue"]))
    return [{"id": i, **row} for i, row in enumerate(result, start=1)]


def _failed_jobs(rng: random.Random) -> list[Row]:
    failures = (
        ("campaign-messages", "App\\Jobs\\SendCampaignJob",
         "GuzzleHttp\\Exception\\ClientException: Client error: `POST https://graph.facebook.com/v18.0/"
         "messages` resulted in a `400 Bad Request` response: (#131030) Recipient phone number not in "
         "allowed list"),
        ("whatsapp-webhooks", "App\\Jobs\\ProcessWhatsAppWebhookJob",
         "Illuminate\\Database\\QueryException: SQLSTATE[23000]: Integrity constraint violation: 1062 "
         "Duplicate entry for key 'chats_uuid_unique'"),
        ("default", "App\\Jobs\\ProcessSingleCampaignLogJob",
         "Illuminate\\Queue\\MaxAttemptsExceededException: App\\Jobs\\ProcessSingleCampaignLogJob has "
         "been attempted too many times."),
    )
    result = []
    for i, (queue, job_class, exception) in enumerate(failures, start=1):
        failed = _between(rng, datetime(2025, 10, 1), _SNAPSHOT_AT)
        result.append({
            "id": i,
            "uuid": _uuid(rng),
            "connection": "database",
            "queue": queue,
            "payload": _job_payload(rng, job_class, 3),
            "exception": exception + "\nStack trace:\n#0 /var/www/blazz/vendor/laravel/framework/src/"
                         "Illuminate/Queue/CallQueuedHandler.php(125): handle()\n#1 {main}",
            "failed_at": _ts(failed),
        })
    return result
