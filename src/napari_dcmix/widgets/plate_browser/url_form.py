"""Plugins › napari-dcmix › *Open plate URL…*: a plate's URL and how to read it (S3 endpoint, signed
or anonymous, the memory and disk caches). *Open* hands it to the viewer's Plate browser, which reads
the metadata in the background; the form then closes. Thin: the settings are ``remote.RemoteSettings``."""

from __future__ import annotations

from napari.utils import notifications
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget

from ...errors import DcmixError
from ...plate.location import PlateLocation, is_url
from ...plate.remote import RemoteSettings, user_cache_folder
from ..session import real_viewer

URL_HELP = ("The URL of an OME-Zarr HCS plate (NGFF 0.4 or 0.5), the .zarr folder itself, e.g.\n"
            "https://uk1s3.embassy.ebi.ac.uk/idr/zarr/v0.4/idr0001A/2551.zarr (IDR) or s3://bucket/screen.zarr")


class OpenUrlForm(QWidget):
    """The form. ``plate_browser()`` gives the viewer's Plate browser (docking one if there is none)."""

    def __init__(self, napari_viewer, plate_browser):
        super().__init__()
        self.viewer = real_viewer(napari_viewer)
        self.plate_browser = plate_browser
        defaults = _env_settings()
        form = QFormLayout(self)
        self.url_edit = QLineEdit(placeholderText="https://…/plate.zarr  or  s3://bucket/plate.zarr", toolTip=URL_HELP)
        self.url_edit.returnPressed.connect(self.open)
        form.addRow("Plate URL", self.url_edit)
        self.endpoint_edit = QLineEdit(defaults.s3_endpoint or "", placeholderText="optional, for s3:// on another "
                                       "server than AWS", toolTip="An S3-compatible server, e.g. https://uk1s3.embassy.ebi.ac.uk")
        form.addRow("S3 endpoint", self.endpoint_edit)
        self.signed_box = QCheckBox("Sign S3 requests (a private bucket)", checked=defaults.s3_signed,
                                    toolTip="Use your AWS credentials; unchecked: anonymous, for public buckets")
        form.addRow(self.signed_box)
        self.cache_spin = QSpinBox(minimum=0, maximum=1 << 20, suffix=" MiB", value=defaults.cache_bytes >> 20,
                                   toolTip="Memory kept for fetched chunks while the plate is open (0: none)")
        form.addRow("Memory cache", self.cache_spin)
        self.disk_box = QCheckBox("Also keep fetched chunks on disk", checked=defaults.disk_cache is not None,
                                  toolTip=f"In {user_cache_folder()} (never beside the data): the next session "
                                          "fetches nothing twice")
        form.addRow(self.disk_box)
        self.open_button = QPushButton("Open in the Plate browser")
        self.open_button.clicked.connect(self.open)
        form.addRow(self.open_button)
        self.status = QLabel("Metadata is read when the plate opens; each site's pixels when it is shown.")
        self.status.setWordWrap(True)
        form.addRow(self.status)

    def settings(self) -> RemoteSettings:
        return _env_settings(cache_bytes=self.cache_spin.value() << 20,
                             disk_cache=user_cache_folder() if self.disk_box.isChecked() else None,
                             s3_endpoint=self.endpoint_edit.text().strip() or None,
                             s3_signed=self.signed_box.isChecked())

    def open(self):
        """Open the URL in the Plate browser (in the background); the form closes. None if refused."""
        url = self.url_edit.text().strip()
        if not is_url(url):
            notifications.show_warning("Give the plate's URL: https://…/plate.zarr or s3://bucket/plate.zarr "
                                       "(a folder on this computer opens in the Plate browser itself).")
            return None
        try:
            PlateLocation.of(url)
            settings = self.settings()
        except DcmixError as err:
            notifications.show_error(f"Could not open the plate: {err}")
            return None
        browser = self.plate_browser()
        browser.open_plate(url, remote=settings)
        QTimer.singleShot(0, self._close)
        return browser

    def _close(self) -> None:
        try:
            self.viewer.window.remove_dock_widget(self)
        except (LookupError, RuntimeError, AttributeError):
            pass  # not docked (a test, a script): nothing to close


def _env_settings(**overrides) -> RemoteSettings:
    """The environment's settings (``NAPARI_DCMIX_*``) under ``overrides``; a bad value is named in a
    warning and the defaults are used (the form still opens)."""
    try:
        return RemoteSettings.from_env(**overrides)
    except DcmixError as err:
        notifications.show_warning(f"{err}; using the defaults instead")
        return RemoteSettings(**{k: v for k, v in overrides.items() if v is not None})
