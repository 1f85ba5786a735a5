"""An index for the scheduler's shortlist query (cloud/scheduler/prefilter.py): hosts by free RAM
after the allocation ratio, most first, then by name. The query asks for the best few hosts with
room in exactly this order, so the database reads a few dozen index entries instead of every
node's row: at 10,000 hosts a whole scan and sort is most of a decision's time.

The expression must stay the one prefilter.FREE["free_ram_mb"] writes, or the index is not used.
It lives here, not in compute's models, because the scheduler's query is all it is for.
"""

from django.db import migrations

INDEX = "scheduler_shortlist_free_ram"


class Migration(migrations.Migration):

    dependencies = [
        ("scheduler", "0002_allocation_to_compute"),
        ("compute", "0016_host_failure_confirmation"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX {INDEX} ON compute_computenode "
            "((memory_mb * ram_allocation_ratio - memory_mb_used) DESC, host)",
            f"DROP INDEX {INDEX}",
        ),
    ]
