"""The study browser: the local archive's studies and series (:class:`StudyBrowser`) and a CD or
folder read in place (:class:`MediaBrowser`); both hand series to the viewer as
:class:`~workstation.ui.series_request.SeriesRequest` values."""

from workstation.ui.browser.media_browser import MediaBrowser
from workstation.ui.browser.study_browser import StudyBrowser
from workstation.ui.browser.values import StudyQuery

__all__ = ["MediaBrowser", "StudyBrowser", "StudyQuery"]
