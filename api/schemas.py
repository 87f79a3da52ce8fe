"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictInt, StrictStr, Tag, field_validator

__all__ = [
    "INSTANCE_TAGS",
    "ErrorItem",
    "ErrorResponse",
    "ExportDocument",
    "ImportDocument",
    "ExportState",
    "Health",
    "Instance",
    "LearnRequest",
    "LearnResponse",
    "ModelCreate",
    "ModelInfo",
    "ModelList",
    "PredictRequest",
    "PredictResponse",
    "Target",
]

#: A finite JSON number; strings, booleans, NaN and infinities are refused.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
FeatureName = Annotated[str, Field(min_length=1, max_length=200)]
INSTANCE_TAGS = ("object", "array", "boolean", "integer", "number", "string")


def _instance_form(value: Any) -> str:
    return "object" if isinstance(value, dict) else "array"


#: ``{"feature": number}`` or ``[number, ...]`` (features named "0", "1", ...).
Instance = Annotated[
    Annotated[dict[FeatureName, Number], Tag("object")] | Annotated[list[Number], Tag("array")],
    Discriminator(_instance_form),
]


def _target_form(value: Any) -> str | None:
    for kind, tag in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return tag
    return None


#: A class label (integer, string or boolean) or a regression target (finite number).
Target = Annotated[
    Annotated[StrictBool, Tag("boolean")]
    | Annotated[StrictInt, Tag("integer")]
    | Annotated[Number, Tag("number")]
    | Annotated[StrictStr, Field(max_length=200), Tag("string")],
    Discriminator(
        _target_form,
        custom_error_type="target_type",
        custom_error_message="a target must be a number, a string or a boolean",
    ),
]
SampleId = Annotated[str, Field(min_length=1, max_length=200)]
ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Body):
    instances: list[Instance] = Field(description="Instances to predict.")
    ids: list[SampleId] | None = Field(
        None, description="Optional ids: features and predictions are kept until a label arrives (an id that "
        "already waits with other features: 409)."
    )
    min_model_version: StrictInt | None = Field(
        None,
        ge=0,
        description="Answer from a state holding at least this many learn requests (e.g. the `model_version` "
        "of your last learn: read your writes). A predictor process with an older snapshot passes the "
        "request to the writer, which answers from its acknowledged state (409 if that holds fewer).",
    )


class LearnRequest(_Body):
    instances: list[Instance] | None = Field(None, description="Instances; omit when `ids` is given.")
    ids: list[SampleId] | None = Field(None, description="Ids of earlier predictions (delayed labels).")
    targets: list[Target] = Field(description="One target per instance or id.")


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[dict[str, float | None]] | None = None
    model_version: int = Field(description="The learn requests the answering state holds.")
    staleness_seconds: float = Field(
        default=0.0,
        description="Bound on how long before the request the answering state stopped holding every "
        "acknowledged update: 0 from the writer, at most `max_staleness_seconds` from a predictor process.",
    )


class LearnResponse(BaseModel):
    learned: int
    samples_seen: int
    model_version: int


class ModelCreate(_Body):
    name: ModelName
    estimator: Literal["AMClassifier", "AMRegressor"] = "AMClassifier"
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor arguments.")


class ModelInfo(BaseModel):
    name: str
    estimator: str
    params: dict[str, Any] = Field(
        description="The constructor arguments given at creation (a null `seed` as drawn then)."
    )
    config: dict[str, Any] = Field(description="The estimator's full configuration (`_get_params()`).")
    samples_seen: int
    model_version: int
    classes: list[Any]
    features: list[str]
    metrics: dict[str, float | int | None]
    pending_ids: int


class ModelList(BaseModel):
    models: list[ModelInfo]


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="`degraded` while any model has a problem.")
    models: int = Field(description="Models serving.")
    problems: dict[str, str] = Field(
        default_factory=dict, description="Model -> what is wrong (quarantined, checkpoints or log failing)."
    )


Count = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]


class ExportState(BaseModel):
    samples_seen: Count = 0
    model_version: Count = 0
    metrics: dict[str, Annotated[float, Field(allow_inf_nan=False, ge=0, le=1e300)]] | None = None


class ExportDocument(_Body):
    format: Literal["stream_am.model/1"] = "stream_am.model/1"
    estimator: Literal["AMClassifier", "AMRegressor"]
    params: dict[str, Any]
    state: ExportState = Field(default_factory=ExportState, description="samples_seen, version, metrics.")
    files: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")], str] = Field(
        description="File name -> base64 content: JSON configuration and safetensors tensors only."
    )


#: counters an import may start from: far below the export's bound, so an imported model can keep counting
ImportCount = Annotated[int, Field(strict=True, ge=0, le=2**53)]


class ImportState(ExportState):
    samples_seen: ImportCount = 0
    model_version: ImportCount = 0

    @field_validator("metrics")
    @classmethod
    def _counts_with_room(cls, metrics: dict[str, float] | None) -> dict[str, float] | None:
        """The metrics' counters (``n``, ``correct``) whole numbers at most 2**53, as the other counters (their
        sums of errors may be far larger), with no more correct answers than answers scored."""
        if metrics is None:
            return metrics
        for key in ("n", "correct"):
            value = metrics.get(key, 0)
            if value > 2**53 or value != int(value):
                raise ValueError(f"metrics.{key} = {value:g} is not a whole number from 0 to 2**53")
        if metrics.get("correct", 0) > metrics.get("n", 0):
            raise ValueError(f"metrics.correct = {metrics['correct']:g} is more than metrics.n = "
                             f"{metrics.get('n', 0):g}")
        return metrics


class ImportDocument(ExportDocument):
    """An export document as an import takes it: its counters at most 2**53 (exactly representable, and far
    from the 2**63 - 1 an export may report)."""

    state: ImportState = Field(default_factory=ImportState, description="samples_seen, version, metrics.")


class ErrorItem(BaseModel):
    field: str | None
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorItem] | str
