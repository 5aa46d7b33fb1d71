"""The epoch table a search prints (``History.epoch_table``, notebook 06): the warm-up shows its
weight loss, alpha columns stay empty until alpha moves, identical epochs are one line."""
from segnas_lite.nas.history import EpochSummary, History, format_epochs


def epoch(number, phase, *, weight_loss=None, alpha_loss=None, weight_steps=0, alpha_steps=0,
          rejected=0, samples=0, elat=0.968, entropy=1.0, max_prob=0.14, changes=0, seconds=4.0):
    return EpochSummary(number, phase, weight_steps, alpha_steps, weight_loss, alpha_loss, samples,
                        rejected, rejected / max(samples, 1), elat, seconds, entropy, changes,
                        max_prob)


def warmup(number, loss, seconds=4.0):
    return epoch(number, "warmup", weight_loss=loss, weight_steps=40, samples=40, seconds=seconds)


def search(number, loss):
    return epoch(number, "search", alpha_loss=loss, alpha_steps=40, rejected=17, samples=57,
                 elat=0.93, entropy=0.8, max_prob=0.35, changes=2)


def rows(table: str) -> list[str]:
    return [line for line in table.splitlines()[1:] if line.split()[0][0].isdigit()]  # no legend


def test_warmup_rows_show_the_weight_loss_and_no_frozen_alpha_columns():
    table = format_epochs([warmup(1, 0.6931), warmup(2, 0.5123), search(3, 0.4567)])
    first, second, third = rows(table)
    assert "0.6931" in first and "0.5123" in second
    assert "0.968" not in first and "1.000" not in first  # E[LAT] and entropy of a frozen alpha
    assert first.split()[1] == "warmup" and first.split()[-1] == "4.0"
    assert "0.4567" in third and "0.930" in third and "17/57" in third and "0.800" in third
    assert "w loss" in table.splitlines()[0] and "α loss" in table.splitlines()[0]
    assert table.splitlines()[4].startswith("w = weights")  # the legend follows the rows


def test_identical_consecutive_epochs_are_one_line_with_their_total_time():
    same = [warmup(n, 0.5, seconds=2.0) for n in (1, 2, 3)]
    table = format_epochs(same + [warmup(4, 0.4), search(5, 0.3)])
    lines = rows(table)
    assert len(lines) == 3
    assert lines[0].split()[0] == "1-3" and lines[0].split()[-1] == "6.0"
    assert lines[1].split()[0] == "4" and lines[2].split()[0] == "5"


def test_rows_that_differ_are_all_kept_and_every_epoch_is_accounted_for():
    epochs = [warmup(n, 1.0 / n) for n in range(1, 21)] + [search(n, 0.5) for n in range(21, 31)]
    lines = rows(format_epochs(epochs))
    assert len(lines) == 21  # 20 warm-up losses, then 10 equal search lines merged into one
    assert lines[-1].split()[0] == "21-30"


def test_interleaved_epochs_show_both_losses():
    mixed = epoch(3, "search", weight_loss=0.25, alpha_loss=0.75, weight_steps=40, alpha_steps=8,
                  rejected=3, samples=50, elat=0.9, entropy=0.9, max_prob=0.2, changes=1)
    (line,) = rows(format_epochs([mixed]))
    assert "0.2500" in line and "0.7500" in line and "0.900" in line


def test_history_table_survives_the_json_round_trip():
    history = History(space="seed", op_names=[["a", "b"]], budget_ms=1.0, fixed_ms=0.1,
                      table_ms=[[0.1, 0.2]], table_meta={}, config={}, alpha_init=[[0.0, 0.0]],
                      epochs=[warmup(1, 0.6931), search(2, 0.4567)])
    assert History.from_json(history.to_json()).epoch_table() == history.epoch_table()
