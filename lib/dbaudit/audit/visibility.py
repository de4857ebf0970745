"""What each snapshot's account could see, and whether two snapshots can be compared at all (issue #9.4).

A snapshot records, per object class, whether its account saw all of it (core.snapshot.VISIBILITY). Two
snapshots whose accounts saw different things cannot be diffed for that class: a trigger "removed"
between them may only have become invisible. So the audit fails such a class outright, and says that
classes neither side could see were not audited. Snapshots from older dbaudit versions read "unknown",
which is compared as before (their changes still show as changes).
"""

from __future__ import annotations

from dbaudit.core.checks import Check
from dbaudit.core.snapshot import COMPLETE, HIDDEN, NAMES, OBJECT_CLASSES, PARTIAL, UNKNOWN, Snapshot

_SAW = {
    HIDDEN: "none of the {cls} (they read as none, whatever the database holds)",
    PARTIAL: "only some of the {cls}",
    NAMES: "the {cls} but not their definitions (a changed body goes unseen)",
    COMPLETE: "all the {cls}",
}


def saw(visibility: str, object_class: str) -> str:
    return _SAW.get(visibility, "an unknown part of the {cls}").format(cls=object_class)


def blind_spots(snapshot: Snapshot) -> list[str]:
    """One line per object class the snapshot's account could not fully see."""
    return [f"the account saw {saw(v, cls)}" for cls in OBJECT_CLASSES
            if (v := snapshot.visible(cls)) not in (COMPLETE, UNKNOWN)]


def visibility_checks(before: Snapshot, after: Snapshot) -> list[Check]:
    """A failed check per class the two sides saw differently; a skipped one per class neither fully saw."""
    checks = []
    for cls in OBJECT_CLASSES:
        b, a = before.visible(cls), after.visible(cls)
        if UNKNOWN in (b, a):
            continue
        if b != a:
            checks.append(Check("visibility", cls, "fail",
                                f"the before snapshot's account saw {saw(b, cls)}, the after snapshot's {saw(a, cls)}: "
                                f"{cls} cannot be compared; take both snapshots with the same grants (dbaudit grants)"))
        elif b != COMPLETE:
            checks.append(Check("visibility", cls, "skipped",
                                f"neither snapshot's account saw all the {cls} ({b}): changes to them are not audited"))
    return checks
