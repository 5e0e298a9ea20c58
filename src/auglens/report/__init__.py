"""The study report: figures (PNG + SVG), tables (CSV) and one self-contained ``index.html``.

Entry point: :func:`build_report` (``auglens report DIR``). It reads only the study folder, so a report can
be rebuilt anywhere from the folder alone. Modules: :mod:`~auglens.report.style` (the one visual style),
:mod:`~auglens.report.figures` and :mod:`~auglens.report.cam_grid` (one function per figure),
:mod:`~auglens.report.html` (page assembly), :mod:`~auglens.report.study_files` (reading the folder),
:mod:`~auglens.report.keys` (what a rebuild may keep), :mod:`~auglens.report.build` (putting it together).
"""

from auglens.report.build import build_report

__all__ = ["build_report"]
