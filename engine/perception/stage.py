"""Perception stage: mediapipe 0.10.21's bundled legacy solutions -> PerceptionResult.

Face mesh (478 points with refined eyes/lips), pose (33 image + world landmarks with
visibility, model_complexity=1 — the only bundled pose model; 0 and 2 try to download)
and the person segmentation that the pose graph produces. Everything is converted once
to image pixels here so the later stages never see mediapipe's normalised coordinates.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from engine.frame import Frame
from engine.perception.crops import (POSE_CROP_SIZE, landmarks_to_pixels, pose_in_box, pose_in_square,
                                     small_people)
from engine.perception.people import (box_intersection, choose_person, crop_box,
                                      extract_square, find_people, smooth_box, tile_boxes, uncrop_mask)
from engine.perception.result import PerceptionResult
from engine.stage_protocol import StageContext

log = logging.getLogger(__name__)

NUM_FACE_LANDMARKS = 478
NUM_POSE_LANDMARKS = 33
FACE_RETRY_SIZE = 384  # a retried face region is resampled to this square
MAX_RETRY_PEOPLE = 3  # person blobs tried, largest first, when a photo's pose is missed
MAX_SMALL_PEOPLE = 4  # blobs only the tiled search finds, largest first, checked for a pose
MAX_PEOPLE_POSES = 8  # people of a photo (from the left) given a pose of their own
TILED_EVERY = 5  # video, nobody in view: every 5th people search (~1 s at 25 fps) is tiled


@dataclass(frozen=True)
class PerceptionSettings:
    """face/pose/segmentation switch the three mediapipe graphs on or off.

    static_image_mode: detect on every frame (photos, image folders) instead of tracking
    from the previous frame (video, camera).
    multi_person: look for several people (selfie-segmentation blobs) and give the pose
    graph a crop around the chosen one; `person` None = the largest, most central person,
    an int = the person-th from the left.
    people_every: look for people every N frames (the crop is kept in between).
    """

    face: bool = True
    pose: bool = True
    segmentation: bool = True
    static_image_mode: bool = False
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    multi_person: bool = True
    person: int | None = None
    people_every: int = 5


class PerceptionStage:
    name = "perception"
    requires: tuple[str, ...] = ()  # the stages whose results process() reads

    def __init__(self, settings: PerceptionSettings | None = None) -> None:
        self.settings = settings or PerceptionSettings()
        self._face_mesh = None
        self._pose = None
        self._selfie = None
        self._executor: ThreadPoolExecutor | None = None
        self._crop: np.ndarray | None = None  # (4,) float32 pose crop box, None = full frame
        self._person_box: np.ndarray | None = None  # the followed person's blob box
        self._pose_centre: np.ndarray | None = None  # (2,) last pose landmarks' mean, pixels
        self._people: list = []  # PersonCandidate of the last people search
        self._people_boxes: np.ndarray | None = None  # (P, 4) every person the search found
        self._photo_poses: dict[tuple, np.ndarray] = {}  # box -> pose found while checking it
        self._small_person = None  # video: a person only the tiled search found, while tracked
        self._tiled_searches = 0
        self._last_pose_frame = -1
        self._frames_seen = 0
        self._build()

    def _build(self) -> None:
        # Imported here: mediapipe takes ~1 s to import and pulls in jax/protobuf.
        import mediapipe as mp

        s = self.settings
        if s.face:
            self._face_mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=s.static_image_mode,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=s.min_detection_confidence,
                min_tracking_confidence=s.min_tracking_confidence,
            )
            if s.multi_person and s.pose:
                self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
        if s.face and (s.pose or s.segmentation):
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="holocap-face")
        if s.pose or s.segmentation:
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=s.static_image_mode,
                model_complexity=1,
                smooth_landmarks=not s.static_image_mode,
                enable_segmentation=s.segmentation,
                # Crops change the input size, which the segmentation smoother rejects.
                smooth_segmentation=not s.static_image_mode and not s.multi_person,
                min_detection_confidence=s.min_detection_confidence,
                min_tracking_confidence=s.min_tracking_confidence,
            )
            if s.multi_person and s.pose:
                self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)

    def process(self, frame: Frame, ctx: StageContext) -> PerceptionResult:
        height, width = frame.image.shape[:2]
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False  # lets mediapipe use the buffer without a copy
        # With both graphs on, the face graph runs on a helper thread while the pose graph
        # runs here: mediapipe releases the GIL, so the stage costs max(face, pose) on two
        # cores instead of their sum.
        # On video the people search (every `people_every` frames) also goes to the helper
        # thread, beside the face: its crop then applies from the next frame, and the pose
        # graph — the longest of the three — is not made to wait for it. Photos are
        # unrelated to each other, so there the crop is found first, for this image.
        face_job = None
        concurrent_people = not self.settings.static_image_mode
        if self._face_mesh is not None and self._pose is not None:
            face_job = self._executor.submit(self._detect_face, rgb, width, height, concurrent_people)
        face = self._detect_face(rgb, width, height) if face_job is None else None
        if face_job is None or not concurrent_people:
            self._update_person_crop(rgb)
        pose, visibility, world, mask = self._detect_pose(rgb, width, height)
        if face_job is not None:
            face = face_job.result()
        if face is None and self._face_mesh is not None and self.settings.static_image_mode:
            face = self._retry_face(rgb, width, height, pose)
        face_box = None if face is None else \
            np.array([*face[:, :2].min(0), *face[:, :2].max(0)], np.float32)
        if self.settings.static_image_mode and pose is not None:
            self._add_posed_person(pose, visibility)
        people_pose = None
        if self.settings.static_image_mode and self._people_boxes is not None and len(self._people_boxes) > 1:
            people_pose = self._people_poses(rgb)
        self._frames_seen += 1
        return PerceptionResult(
            image_size=(height, width),
            face_landmarks=face,
            face_box=face_box,
            pose_landmarks=pose,
            pose_visibility=visibility,
            pose_world=world,
            segmentation=mask,
            people_boxes=self._people_boxes,
            people_pose=people_pose,
        )

    def _detect_face(self, rgb: np.ndarray, width: int, height: int,
                     find_people: bool = False) -> np.ndarray | None:
        if find_people:
            self._update_person_crop(rgb)
        if self._face_mesh is None:
            return None
        out = self._face_mesh.process(rgb)
        if not out.multi_face_landmarks:
            return None
        return landmarks_to_pixels(out.multi_face_landmarks[0], width, height)

    def _detect_pose(self, rgb: np.ndarray, width: int, height: int):
        """-> (landmarks (33,3) px, visibility (33,), world (33,3) m, mask (H,W)), Nones when absent."""
        pose = visibility = world = mask = None
        if self._pose is None:
            return pose, visibility, world, mask
        crop = self._crop  # read once: the helper thread may set the next frame's crop meanwhile
        if crop is None:
            x0, y0, crop_w, crop_h = 0.0, 0.0, width, height
            out = self._pose.process(rgb)
        else:
            x0, y0 = float(crop[0]), float(crop[1])
            crop_w = crop_h = float(crop[2] - crop[0])
            out = self._pose.process(extract_square(rgb, crop, POSE_CROP_SIZE))
            if out.pose_landmarks is None and self.settings.static_image_mode:
                # Never worse than mediapipe on its own: the person crop can cut a limb or
                # frame a pose the model does not know; a photo gets the whole frame too.
                # (Not on video: the tracking graph must keep seeing the same kind of input.)
                x0, y0, crop_w, crop_h, crop = 0.0, 0.0, width, height, None
                out = self._pose.process(rgb)
        if out.pose_landmarks is None and self.settings.static_image_mode:
            for box in self._retry_boxes(width, height):
                retry = self._pose.process(extract_square(rgb, box, POSE_CROP_SIZE))
                if retry.pose_landmarks is not None:
                    out, crop = retry, box
                    x0, y0 = float(box[0]), float(box[1])
                    crop_w = crop_h = float(box[2] - box[0])
                    break
        if out.pose_landmarks is not None and self.settings.pose:
            pose = landmarks_to_pixels(out.pose_landmarks, crop_w, crop_h)
            pose[:, 0] += x0
            pose[:, 1] += y0
            visibility = np.array([p.visibility for p in out.pose_landmarks.landmark], np.float32)
            if out.pose_world_landmarks is not None:
                world = np.array([[p.x, p.y, p.z] for p in out.pose_world_landmarks.landmark], np.float32)
        if self.settings.segmentation and out.segmentation_mask is not None:
            mask = np.asarray(out.segmentation_mask, dtype=np.float32)
            if crop is not None:
                mask = uncrop_mask(mask, crop, width, height)
        self._pose_centre = None if pose is None else pose[:, :2].mean(axis=0)
        if pose is not None:
            self._last_pose_frame = self._frames_seen
        return pose, visibility, world, mask

    def _add_posed_person(self, pose: np.ndarray, visibility: np.ndarray) -> None:
        """A photo's pose found outside every person box (by a tile of the retry, the
        segmentation having missed someone that small) is a person too: its landmarks' box
        joins people_boxes."""
        seen = pose[visibility > 0.5, :2] if (visibility > 0.5).sum() >= 2 else pose[:, :2]
        boxes = np.zeros((0, 4), np.float32) if self._people_boxes is None else self._people_boxes
        if any(_inside(seen.mean(axis=0), box) for box in boxes):
            return
        box = np.array([*seen.min(axis=0), *seen.max(axis=0)], np.float32)
        self._people_boxes = np.concatenate([boxes, box[None]])[np.argsort([*boxes[:, 0], box[0]])]

    def _people_poses(self, rgb: np.ndarray) -> np.ndarray:
        """(P, 33, 3) pose landmarks (pixels) of each person blob of a photo, found in its
        own crop; all zeros for a person whose pose was not found. Photos only: on video
        only the chosen person is tracked (a pose per person per frame would not be live)."""
        boxes = self._people_boxes[:MAX_PEOPLE_POSES]
        poses = np.zeros((len(boxes), NUM_POSE_LANDMARKS, 3), np.float32)
        for k, box in enumerate(boxes):
            pose = self._photo_poses.get(tuple(box.tolist()))  # found while checking a small person
            if pose is None:
                found = pose_in_square(self._pose, rgb, crop_box(box))
                pose = None if found is None else found[0]
            if pose is not None:
                poses[k] = pose
        return poses

    def _retry_face(self, rgb: np.ndarray, width: int, height: int,
                    pose: np.ndarray | None) -> np.ndarray | None:
        """A photo whose face FaceMesh missed: look again in the head region the pose found
        (enlarged: a small or far face) and in the whole image with a margin (a face cut by
        the edge or filling the frame). Landmarks come back in image pixels."""
        side = 1.4 * max(width, height)
        boxes = [np.array([width / 2 - side / 2, height / 2 - side / 2,
                           width / 2 + side / 2, height / 2 + side / 2], np.float32)]
        if pose is not None:
            head = pose[:11, :2]  # mediapipe pose 0-10: nose, eyes, ears, mouth
            centre = head.mean(axis=0)
            extent = max(float(np.ptp(head[:, 0])), float(np.ptp(head[:, 1])), 8.0)
            half = 1.6 * extent
            boxes.insert(0, np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half],
                                     np.float32))
        for box in boxes:
            out = self._face_mesh.process(extract_square(rgb, box, FACE_RETRY_SIZE))
            if out.multi_face_landmarks:
                side_px = float(box[2] - box[0])
                face = landmarks_to_pixels(out.multi_face_landmarks[0], side_px, side_px)
                face[:, 0] += box[0]
                face[:, 1] += box[1]
                return face
        return None

    def _retry_boxes(self, width: int, height: int) -> list[np.ndarray]:
        """Where to look again when a photo's pose is missed (square boxes, in order): the
        whole image with a margin (a person cut by the edge, or filling the frame), then
        each person blob of the segmentation, enlarged (a small person in a wide shot),
        then overlapping tiles of the image."""
        side = 1.4 * max(width, height)
        cx, cy = width / 2.0, height / 2.0
        boxes = [np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], np.float32)]
        # This photo's people search already ran (_update_person_crop): no second pass.
        people = sorted(self._people, key=lambda p: -p.area)
        # Tight and loose: the pose detector wants the whole body, with room around it.
        boxes += [crop_box(p.box, margin) for p in people[:MAX_RETRY_PEOPLE] for margin in (0.2, 0.6)]
        # Last, the tiles themselves: a person too small for the segmentation to see is
        # still found by the pose model in a tile scaled up to its crop size (~35 ms a
        # tile, only for a photo where everything else found nobody).
        return boxes + tile_boxes(width, height)

    def _update_person_crop(self, rgb: np.ndarray) -> None:
        """Find the people in view (segmentation blobs) — every `people_every` frames on
        video, on every photo — and decide what the pose graph sees: the full frame while it
        already tracks the chosen person (or only one person is in view), else a crop around
        the chosen person. A photo is unrelated to the one before: nothing is followed or
        smoothed across photos."""
        still = self.settings.static_image_mode
        if self._selfie is None or (not still and self._frames_seen % max(1, self.settings.people_every)):
            return
        mask = self._selfie.process(rgb).segmentation_mask
        if still:
            people = self._photo_people(rgb, mask)
        else:
            people = find_people(np.asarray(mask, np.float32)) if mask is not None else []
            if not people:
                people = self._small_person_on_video(rgb, mask)
        self._people = people
        self._people_boxes = np.array([p.box for p in people], np.float32).reshape(-1, 4)
        chosen = choose_person(people, self.settings.person, None if still else self._person_box)
        self._person_box = None if chosen is None else chosen.box  # followed even when alone
        if chosen is not None and chosen is self._small_person:
            self._crop = crop_box(chosen.box, 0.6)  # the pose graph's only view of someone that small
            return
        if chosen is None or len(people) < 2:
            self._crop = None
            return
        if still:
            self._crop = crop_box(chosen.box)
            return
        tracked = self._pose_centre
        if self._crop is None and tracked is not None and _inside(tracked, chosen.box):
            return  # the full-frame tracker is already on the chosen person: keep it
        self._crop = smooth_box(self._crop, crop_box(chosen.box))

    def _small_person_on_video(self, rgb: np.ndarray, whole) -> list:
        """Video, and the whole-frame mask holds nobody: a person too small for it (far away
        in a wide shot) is looked for with the tiled search, every TILED_EVERY-th people
        search while nobody is tracked (~0.1 s on the helper thread). A person found is kept,
        their crop given to the pose graph, for as long as it tracks them there."""
        kept = self._small_person
        if kept is not None and self._frames_seen - self._last_pose_frame <= self.settings.people_every:
            return [kept]  # the pose graph found them in the crop since the last search
        self._small_person = None
        self._tiled_searches += 1
        if (self._tiled_searches - 1) % TILED_EVERY:
            return []
        height, width = rgb.shape[:2]
        whole = np.zeros((height, width), np.float32) if whole is None else np.asarray(whole, np.float32)
        found = small_people(self._selfie, rgb, whole)
        if not found:
            return []
        self._small_person = max(found, key=lambda c: c.area)
        return [self._small_person]

    def _photo_people(self, rgb: np.ndarray, whole) -> list:
        """A photo's people: the blobs of the whole-image mask, and the small ones that only
        the tiled search finds (crops.small_people), apart from those, where the pose model
        then finds a person filling their crop (zoomed in, the segmentation also takes cups
        and statues for people)."""
        height, width = rgb.shape[:2]
        whole = np.zeros((height, width), np.float32) if whole is None else np.asarray(whole, np.float32)
        people = find_people(whole)
        extra = sorted((c for c in small_people(self._selfie, rgb, whole)
                        if not any(box_intersection(c.box, p.box) > 0 for p in people)), key=lambda c: -c.area)
        self._photo_poses = {}
        for candidate in extra[:MAX_SMALL_PEOPLE]:
            pose = pose_in_box(self._pose, rgb, candidate.box)
            if pose is not None:
                people.append(candidate)
                self._photo_poses[tuple(candidate.box.tolist())] = pose
        return sorted(people, key=lambda p: float(p.box[0]))

    def reset(self) -> None:
        """A new source: drop mediapipe's tracking state by rebuilding the graphs."""
        self.close()
        self._build()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # a face job in flight finishes before its graph closes
            self._executor = None
        for graph in (self._face_mesh, self._pose, self._selfie):
            if graph is not None:
                graph.close()
        self._face_mesh = self._pose = self._selfie = None
        self._crop, self._person_box, self._pose_centre, self._frames_seen = None, None, None, 0
        self._people, self._people_boxes, self._photo_poses = [], None, {}
        self._small_person, self._tiled_searches, self._last_pose_frame = None, 0, -1


def _inside(point: np.ndarray, box: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])
