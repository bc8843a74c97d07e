"""What a user sees: banners, progress lines and the one line per epoch."""

import io

import pytest

from srdc_tf import console
from srdc_tf.callbacks import epoch_summary


@pytest.fixture(autouse=True)
def default_verbosity():
  yield
  console.set_verbose(2)


class _Terminal(io.StringIO):

  def isatty(self):
    return True


@pytest.mark.parametrize("level, printed", [(0, ""), (1, "=== SRDC ===\n"),
                                            (2, "=== SRDC ===\n")])
def test_banner_respects_the_verbosity(capsys, level, printed):
  console.set_verbose(level)
  console.banner("SRDC")
  assert capsys.readouterr().out == printed


@pytest.mark.parametrize("done, total, note, expected", [
    (5, 10, "", "checking [############............] 5/10  3s"),
    (10, 10, "1 bad", "checking [########################] 10/10  3s  1 bad"),
    (7, None, "", "checking 7  3s"),
])
def test_format_progress(done, total, note, expected):
  assert console.format_progress("checking", done, total, 3.2,
                                 note) == expected


@pytest.mark.parametrize("transient, stream, expected_lines", [
    (False, io.StringIO, 1),  # A log gets the final line.
    (True, io.StringIO, 0),   # A short repeated pass writes nothing.
    (True, _Terminal, 0),     # On a terminal its line is erased.
    (False, _Terminal, 1),
])
def test_progress_stays_short_in_logs(transient, stream, expected_lines):
  out = stream()
  with console.Progress("pass", total=3, stream=out, enabled=True,
                        transient=transient) as progress:
    for _ in range(3):
      progress.update()
  assert out.getvalue().count("\n") == expected_lines
  if expected_lines:
    assert "pass [" in out.getvalue() and "3/3" in out.getvalue()


def test_progress_is_silent_below_level_2():
  console.set_verbose(1)
  out = io.StringIO()
  with console.Progress("pass", total=1, stream=out) as progress:
    progress.update()
  assert not out.getvalue()


LOGS = {"loss": 9.7016, "source_output_loss": 1.1051,
        "target_output_loss": 1.5287, "lambda": 0.9975,
        "learning_rate": 0.0022, "source_accuracy": 0.6042,
        "val_target_accuracy": 0.375, "score_balance": 0.98, "l2_loss": 0.07}


@pytest.mark.parametrize("source_only, logs, expected", [
    (False, LOGS, "srdc epoch  3/20  12s  loss 9.702  L_s 1.105  L_t 1.529  "
     "lambda 1.00  lr 0.0022  source acc 60.4%  target acc 37.5%"),
    (True, LOGS, "srdc epoch  3/20  12s  loss 9.702  L_s 1.105  lr 0.0022  "
     "source acc 60.4%  target acc 37.5%"),
    (False, {"loss": 2.0, "score_balance": 0.5},
     "srdc epoch  3/20  12s  loss 2.000  balance 0.50"),
])
def test_one_line_per_epoch_with_the_main_numbers(source_only, logs, expected):
  assert epoch_summary.format_epoch("srdc", 2, 20, logs, 12.2,
                                    source_only) == expected
