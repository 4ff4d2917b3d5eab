"""The image layers of the view: one coloured layer per channel, contrast (histogram, auto),
visibility, the Z slice."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from svetlana.gui.widgets.image_view.graphics import auto_levels, channel_colours


class LayersMixin:
    """Channels, contrast and Z of ImageView (shares its state: ``_image``, ``_levels``, ...)."""

    @property
    def ndim(self) -> int:
        return 0 if self._labels is None else self._labels.ndim

    @property
    def z(self) -> int:
        return self._z

    @property
    def n_slices(self) -> int:
        return self._labels.shape[0] if self.ndim == 3 else 1

    @property
    def channel_items(self) -> list[pg.ImageItem]:
        return list(self._channel_items)

    def fit(self) -> None:
        """Show the whole image."""
        if self._labels is None:
            return
        h, w = self._full_shape[-2:]
        self.viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def _set_z_controls_visible(self, on: bool) -> None:
        for w in (self.z_label, self.z_slider, self.z_value):
            w.setVisible(on)

    def _slice(self, array: np.ndarray) -> np.ndarray:
        return array[self._z] if array.ndim == 3 else array

    def _show_slice(self) -> None:
        if self._image is None:
            return
        for c, item in enumerate(self._channel_items):
            item.setImage(self._slice(self._image[c]), autoLevels=False, levels=self._levels[c])
            item.setVisible(self._visible[c])
        self.overlay.fill, self.overlay.line = self._colour_tables()
        self.overlay.set_slice(self._slice(self._labels))  # every tile, now
        self._pending_tiles.clear()
        self._apply_overlay_visibility()
        if self.ndim == 3:
            self.z_value.setText(f"{self._z + 1} / {self.n_slices}")

    # ---- channels and contrast ------------------------------------------------------------
    def set_channel_visible(self, channel: int, visible: bool) -> None:
        if 0 <= channel < len(self._channel_items):
            self._visible[channel] = visible
            self._channel_items[channel].setVisible(visible)

    def channel_visible(self, channel: int) -> bool:
        return self._visible[channel]

    def levels(self, channel: int) -> tuple[float, float]:
        return self._levels[channel]

    def set_levels(self, channel: int, lo: float, hi: float) -> None:
        self._levels[channel] = (float(lo), float(hi))
        self._channel_items[channel].setLevels((lo, hi))
        if channel == self._active:
            self._update_hist()

    def auto_contrast(self) -> None:
        if self._image is None:
            return
        for c in range(self._image.shape[0]):
            self.set_levels(c, *auto_levels(self._image[c]))

    def _set_active_channel(self, index: int) -> None:
        if 0 <= index < len(self._channel_items):
            self._active = index
            self._update_hist()

    def _update_hist(self) -> None:
        if not self._channel_items:
            return
        item = self._channel_items[self._active]
        hx, hy = item.getHistogram()
        self.hist.blockSignals(True)
        if hx is not None:
            self.hist.plot.setData(hx, hy)
            colour = channel_colours(len(self._channel_items))[self._active]
            self.hist.plot.setPen(colour)
        self.hist.setLevels(*self._levels[self._active])
        self.hist.blockSignals(False)

    def _on_hist_levels(self) -> None:
        if not self._channel_items:
            return
        lo, hi = self.hist.getLevels()
        self._levels[self._active] = (float(lo), float(hi))
        self._channel_items[self._active].setLevels((lo, hi))

    # ---- Z ----------------------------------------------------------------------------------
    def set_z(self, z: int) -> None:
        if self.ndim != 3:
            return
        z = int(np.clip(z, 0, self.n_slices - 1))
        if z == self._z and self.z_slider.value() == z:
            return
        self._z = z
        if self.z_slider.value() != z:
            self.z_slider.blockSignals(True)
            self.z_slider.setValue(z)
            self.z_slider.blockSignals(False)
        self._show_slice()
        self.sliceChanged.emit(z)

    def step_z(self, step: int) -> None:
        self.set_z(self._z + step)
