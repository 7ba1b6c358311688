"""The face parts of SynthFaces: one function per part, each returning :class:`Piece` objects.

A part function reads only its own layout fields, the shared face geometry (position, face length,
eye line) and the style; no part looks at another part's pieces. That is what makes an edit local:
re-rendering with one part changed recomputes that part alone. Occlusion between parts is settled
later, by the renderer (:mod:`maskgan.data.synth.render`).

Coordinates ``(a, b)`` are face units (x right, y down, 1 = face half-width). "Subject's left"
parts (``l_eye``, ``l_brow``, ``l_ear``) sit on the image right, ``a > 0`` (see :data:`LEFT`).
"""
from __future__ import annotations

import numpy as np

from maskgan.data.synth.canvas import F32, Frame, Piece, Textures, coverage, ellipse_sd, lambert
from maskgan.data.synth.params import MIN_EYE_OPEN, Layout, Style

__all__ = ["LEFT", "skin", "ears", "nose", "eyes", "brows", "mouth", "mouth_line", "ear_centre"]

#: Sign of ``a`` for the subject's-left parts: the person's left eye appears on the image right.
#: (Anatomical convention; flip it here if CelebAMask-HQ turns out to name sides as seen.)
LEFT = 1.0


def _rgb(c) -> np.ndarray:
    """An RGB triple as a 3 x 1 x 1 array (colour fields are channel-first: 3 x h x w)."""
    return np.asarray(c, dtype=F32).reshape(3, 1, 1)


def _paint(base, shade) -> np.ndarray:
    """``base`` RGB times a scalar shade field (h x w) -> colour field 3 x h x w."""
    return shade[None] * _rgb(base)


def _mix(c0: np.ndarray, c1, t) -> np.ndarray:
    """Blend colour field ``c0`` towards a field or triple ``c1`` by the weight field ``t`` (h x w)."""
    c1 = c1 if isinstance(c1, np.ndarray) and c1.ndim == 3 else _rgb(c1)
    return c0 + t[None] * (c1 - c0)


def _grain(tex: Textures, box, amount: float) -> np.ndarray:
    return F32(1.0) + F32(amount) * tex.grain[box]


def _face_width(b, L: Layout):
    """Half-width profile of the face: the jaw tapers towards the chin."""
    t = np.clip(b / F32(L.face_length), 0.0, 1.0)
    return F32(1.0) - F32(L.jaw) * t * t


# --- skin, ears, nose --------------------------------------------------------------------------

def skin(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """The face oval (label ``skin``); an ellipsoid lit by the style's light, with cheek blush."""
    ry = L.face_length
    box = fr.box(-1.05, -ry - 0.05, 1.05, ry + 0.05)
    if box is None:
        return []
    a, b = fr.local(box)
    w = _face_width(b, L)
    u, v = a / w, b / F32(ry)
    k2 = u * u + v * v
    d = (k2 - np.sqrt(k2)) / np.sqrt((u / w) ** 2 + (v / F32(ry)) ** 2 + F32(1e-6))
    shade = lambert(np.clip(u, -1, 1) * F32(0.8), np.clip(v, -1, 1) * F32(0.7), light)
    shade *= _grain(tex, box, 0.35 * S.grain) + F32(0.03) * tex.low[box]
    col = _paint(S.skin, shade)
    cheek_y = L.eye_y + 0.45
    blush = np.exp(-((np.abs(a) - F32(0.55)) ** 2 + (b - F32(cheek_y)) ** 2) * F32(18.0)) * F32(S.blush)
    col = _mix(col, (0.85, 0.3, 0.3), blush)
    return [Piece("skin", "skin", box, coverage(d, fr.ppu), col)]


def ear_centre(L: Layout) -> tuple[float, float]:
    """``(|x|, y)`` of the ear centres: at the face side, between eye line and nose tip."""
    return 1.02, L.eye_y + 0.45 * L.nose_len


def _pair(names: tuple[str, str], box, a, cov, color, alpha=None) -> list[Piece]:
    """Split one mirror-symmetric evaluation (both ears, say) into the subject's-left and right
    pieces. Evaluating both sides at once with ``|a|`` halves the work; the box is cut where the
    face's vertical axis crosses its middle row. Parts drawn this way (eyes, brows, ears) stay well
    clear of that axis, so nothing is lost at the cut."""
    rows, cols = box
    split = int(np.searchsorted(a[a.shape[0] // 2], 0.0))
    halves = {LEFT > 0: slice(split, None), LEFT < 0: slice(0, split)}  # True: the a > 0 half
    out = []
    for name, positive in ((names[0], True), (names[1], False)):
        h = halves[positive]
        lo, hi, _ = h.indices(cov.shape[1])
        if hi > lo:
            out.append(Piece(name, name, (rows, slice(cols.start + lo, cols.start + hi)), cov[:, h],
                             color[:, :, h], alpha=None if alpha is None else alpha[:, h]))
    return out


def ears(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Two ears (``l_ear``, ``r_ear``), drawn behind the face; a darker concha inside."""
    ex, ey = ear_centre(L)
    ry, rx = L.ear_size, L.ear_size * 0.5
    box = fr.box(-ex - rx - 0.02, ey - ry - 0.02, ex + rx + 0.02, ey + ry + 0.02)
    if box is None:
        return []
    a, b = fr.local(box)
    m = np.abs(a)
    d = ellipse_sd(m, b, ex, ey, rx, ry)
    concha = coverage(ellipse_sd(m, b, ex + 0.05, ey + 0.02, rx * 0.5, ry * 0.55), fr.ppu)
    shade = lambert(np.sign(a) * (m - F32(ex)) * F32(0.6 / rx), (b - F32(ey)) * F32(0.5 / ry), light)
    shade *= F32(0.93) - F32(0.22) * concha
    return _pair(("l_ear", "r_ear"), box, a, coverage(d, fr.ppu), _paint(S.skin, shade))


def nose(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """The nose (label ``nose``): bridge plus rounded tip; painted as shading of the skin below
    (light-side/dark-side of the bridge, nostrils, a faint rim around the wings)."""
    y0, y1, nw = L.eye_y + 0.03, L.eye_y + L.nose_len, L.nose_width
    box = fr.box(-nw - 0.03, y0 - 0.02, nw + 0.03, y1 + 0.06)
    if box is None:
        return []
    a, b = fr.local(box)
    t = np.clip((b - F32(y0)) / F32(y1 - y0), 0.0, 1.0)
    half = F32(0.07) + F32(nw * 0.55 - 0.07) * t * t
    d_bridge = np.maximum(np.maximum(np.abs(a) - half, F32(y0) - b), b - F32(y1 - 0.05))
    d_tip = ellipse_sd(a, b, 0.0, y1 - 0.06, nw, 0.1)
    d = np.minimum(d_bridge, d_tip)
    side = np.clip(a / F32(nw), -1.0, 1.0)
    m = F32(1.0) + F32(0.25) * side * F32(light[0]) * t  # the bridge's side away from the light is darker
    nostrils = coverage(ellipse_sd(np.abs(a), b, nw * 0.5, y1 - 0.005, 0.055, 0.028), fr.ppu)
    rim = np.clip(F32(1.0) - np.abs(d_tip) * F32(30.0), 0.0, 1.0) * (b > F32(y1 - 0.1))
    m *= F32(1.0) - F32(0.55) * nostrils - F32(0.12) * rim
    return [Piece("nose", "nose", box, coverage(d, fr.ppu), multiply=m)]


# --- eyes and brows ----------------------------------------------------------------------------

def eyes(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Two almond eyes (``l_eye``, ``r_eye``): sclera, iris, pupil, highlight, under a lash line.
    An eye less open than :data:`MIN_EYE_OPEN` is a closed lid: a lash line and no eye label."""
    ew, ey, o, sp = L.eye_size, L.eye_y, L.eye_open, L.eye_spacing
    hu, hl = ew * 0.62 * o, ew * 0.42 * o
    box = fr.box(-sp - ew - 0.04, ey - max(hu, 0.02) - 0.06, sp + ew + 0.04, ey + max(hl, 0.03) + 0.04)
    if box is None:
        return []
    a, b = fr.local(box)
    m = np.abs(a)  # both eyes at once: mirror coordinate
    p = (m - F32(sp)) / F32(ew)
    q = np.maximum(F32(1.0) - p * p, F32(0.0))
    top = F32(ey) - F32(hu) * q
    inside_x = np.abs(m - F32(sp)) - F32(ew)
    lash_t = max(0.035, 1.3 / fr.ppu)
    out = []
    if o >= MIN_EYE_OPEN:
        bot = F32(ey) + F32(hl) * q
        d = np.maximum(np.maximum(top - b, b - bot), inside_x)
        sgn = np.sign(a)  # the gaze moves both irises the same way on screen
        ri, iy = ew * 0.5, ey + 0.1 * hu
        ix = F32(sp) + sgn * F32(L.gaze * ew * 0.45)
        r = np.sqrt((m - ix) ** 2 + (b - F32(iy)) ** 2)
        lid_shadow = np.clip((b - top) * F32(3.0 / max(hu + hl, 1e-3)), 0.0, 1.0)
        col = _paint((0.95, 0.94, 0.92), F32(0.72) + F32(0.28) * lid_shadow)
        iris_t = coverage(r - F32(ri), fr.ppu)
        col = _mix(col, S.iris, iris_t * np.clip(F32(1.25) - r * F32(0.5 / ri), 0, 1))
        col = _mix(col, (0.03, 0.02, 0.02), coverage(r - F32(ri * 0.42), fr.ppu))
        hr = np.sqrt((m - ix + sgn * F32(ri * 0.35)) ** 2 + (b - F32(iy - ri * 0.35)) ** 2)
        col = _mix(col, (0.97, 0.97, 0.97), coverage(hr - F32(ri * 0.18), fr.ppu) * F32(0.9))
        out += _pair(("l_eye", "r_eye"), box, a, coverage(d, fr.ppu), col)
        line = top - F32(lash_t * 0.3)
    else:
        line = F32(ey) + F32(ew * 0.1) * q  # closed lid: a gently drooping line
    cov = coverage(np.maximum(np.abs(b - line) - F32(lash_t / 2), inside_x), fr.ppu)
    lash_col = F32(0.35) * _rgb(S.brow) + F32(0.02)
    out.append(Piece("lashes", None, box, cov, _paint(lash_col, np.ones_like(cov)), alpha=cov * F32(0.9)))
    return out


def brows(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Two arched brows (``l_brow``, ``r_brow``), thick at the inner end, tapering outwards."""
    bl, th = L.brow_len, L.brow_thick
    bx, by = L.eye_spacing + 0.03, L.eye_y - L.brow_gap
    box = fr.box(-bx - bl - 0.02, by - L.brow_arch - abs(L.brow_tilt) - th - 0.02,
                 bx + bl + 0.02, by + abs(L.brow_tilt) + th + 0.02)
    if box is None:
        return []
    a, b = fr.local(box)
    p = (np.abs(a) - F32(bx)) * F32(1.0 / bl)  # -1 inner end .. 1 outer end
    yc = F32(by) - F32(L.brow_arch) * (F32(1.0) - ((p - F32(0.25)) / F32(1.25)) ** 2) - F32(L.brow_tilt) * p
    half = F32(th / 2) * (F32(1.0) - F32(0.45) * np.clip((p + F32(1.0)) * F32(0.5), 0, 1) ** 1.5)
    d = np.maximum(np.abs(b - yc) - half, (np.abs(p) - F32(1.0)) * F32(bl))
    cov = coverage(d, fr.ppu)
    col = _paint(S.brow, _grain(tex, box, 0.1))
    return _pair(("l_brow", "r_brow"), box, a, cov, col, alpha=cov * F32(0.93))


# --- mouth and lips ----------------------------------------------------------------------------

def mouth_line(L: Layout) -> tuple[float, float]:
    """``(y, half_width)`` of the mouth: below the nose tip, wider when smiling."""
    return L.eye_y + L.nose_len + L.mouth_gap, L.mouth_width * (1.0 + 0.1 * max(L.smile, 0.0))


def mouth(fr: Frame, L: Layout, S: Style, tex: Textures, light) -> list[Piece]:
    """Lips (``u_lip``, ``l_lip``) around a mouth line that curves up with ``smile``; an open
    mouth (``mouth_open`` > 0) parts them and shows the inner ``mouth`` class (with teeth)."""
    my, mw = mouth_line(L)
    tu = L.lip_upper * (1.0 - 0.25 * max(L.smile, 0.0))
    g = L.mouth_open * 0.28
    curve = 0.15 * L.smile
    box = fr.box(-mw - 0.02, my - max(curve, 0) - 0.3 * g - tu - 0.03,
                 mw + 0.02, my + max(-curve, 0) + 0.7 * g + L.lip_lower + 0.03)
    if box is None:
        return []
    a, b = fr.local(box)
    p = a / F32(mw)
    q = np.maximum(F32(1.0) - p * p, F32(0.0))
    mid = F32(my) - F32(curve) * p * p
    qa = q ** F32(0.6) if g > 0 else q
    ub, lt = mid - F32(0.3 * g) * qa, mid + F32(0.7 * g) * qa
    sq = np.sqrt(q)
    ut = ub - F32(tu) * sq * (F32(1.0) - F32(0.3) * np.exp(-(p * p) * F32(30.0)))
    lb = lt + F32(L.lip_lower) * sq
    side = np.abs(a) - F32(mw)
    lip = _rgb(S.lip)
    out = []
    if g > 0:
        d = np.maximum(np.maximum(ub - b, b - lt), side)
        teeth = coverage(b - (ub + np.minimum(F32(0.06), (lt - ub) * F32(0.45))), fr.ppu)
        teeth *= coverage(np.abs(a) - F32(0.72 * mw), fr.ppu)
        col = _mix(_paint(F32(0.18) * lip, np.ones_like(b)), (0.92, 0.9, 0.84), teeth)
        out.append(Piece("mouth", "mouth", box, coverage(d, fr.ppu), col))
    seam = g <= 0
    d_u = np.maximum(np.maximum(ut - b, b - ub), side)
    shade_u = F32(0.9) - (F32(0.35) * np.exp(-((b - ub) * F32(45.0)) ** 2) if seam else F32(0.0))
    out.append(Piece("u_lip", "u_lip", box, coverage(d_u, fr.ppu), _paint(lip, shade_u * _grain(tex, box, 0.03))))
    d_l = np.maximum(np.maximum(lt - b, b - lb), side)
    rel = (b - lt) / (lb - lt + F32(1e-3))
    shade_l = F32(1.0) + F32(0.12) * np.exp(-((rel - F32(0.35)) * F32(4.0)) ** 2)
    if seam:
        shade_l = shade_l - F32(0.3) * np.exp(-((b - lt) * F32(45.0)) ** 2)
    out.append(Piece("l_lip", "l_lip", box, coverage(d_l, fr.ppu), _paint(lip, shade_l * _grain(tex, box, 0.03))))
    return out
