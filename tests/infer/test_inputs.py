"""each_input: every input is done, each failure is one line, and the closing count says
how many failed instead of counting them as done."""

import io

from vidaction.infer.inputs import Input, each_input
from vidaction.progress import LineProgress


def test_the_closing_line_counts_the_failures(tmp_path):
    a, b, c, d = (tmp_path / f"{n}.mp4" for n in "abcd")
    items = [Input(a), Input(b, error=f"{b}: empty file"), Input(c),
             Input(d, error=f"{d}: missing")]
    out, err, bars = io.StringIO(), io.StringIO(), io.StringIO()
    bar = LineProgress(total=len(items), desc="predict", unit="video", file=bars)
    rc = each_input(items, lambda it: ({"path": str(it.path)}, [str(it.path)]), bar,
                    False, out, err)
    assert rc == 1
    assert out.getvalue().split() == [str(a), str(c)]
    assert err.getvalue().splitlines() == [f"vidaction: error: {b}: empty file",
                                           f"vidaction: error: {d}: missing"]
    assert bars.getvalue().startswith("predict: 4/4 videos in ")
    assert bars.getvalue().rstrip().endswith(", 2 failed")
