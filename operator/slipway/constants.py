"""Names shared by every layer: API group, versions, plurals, label and annotation keys."""

from typing import Final

GROUP: Final = "slipway.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

SHIPYARD_PLURAL: Final = "shipyards"
TASKPROVIDER_PLURAL: Final = "taskproviders"
SEQUENCERUN_PLURAL: Final = "sequenceruns"
TASKEXECUTION_PLURAL: Final = "taskexecutions"

#: Prefix of kopf's progress and diff-base annotations on our objects.
ANNOTATION_PREFIX: Final = GROUP

LABEL_SHIPYARD: Final = f"{GROUP}/shipyard"
LABEL_STAGE: Final = f"{GROUP}/stage"
LABEL_SEQUENCE: Final = f"{GROUP}/sequence"
LABEL_TASK: Final = f"{GROUP}/task"
LABEL_RUN: Final = f"{GROUP}/run"
#: On a linked SequenceRun: the name of the run whose `.finished` started it.
LABEL_PARENT_RUN: Final = f"{GROUP}/parent-run"
#: On a SequenceRun: the correlation id to use instead of its uid (a linked run keeps its
#: parent's context; the gateway passes a caller's `slipwaycontext`).
ANNOTATION_CONTEXT: Final = f"{GROUP}/context"
#: On a finished evaluation's TaskExecution: `"true"` leaves it out of every later comparison
#: (`slipway invalidate <taskexecution>` sets it; removing it brings the evaluation back).
ANNOTATION_INVALIDATED: Final = f"{GROUP}/invalidated"
#: On a SequenceRun: who triggered it, as the API server authenticated them (the gateway sets
#: it from the caller's TokenReview; a linked run keeps its parent's). An approval's
#: `allowSelfApproval: false` refuses this person. The label of the same key carries the first
#: 32 hex digits of the username's sha256, to select one person's runs with a label selector.
ANNOTATION_TRIGGERED_BY: Final = f"{GROUP}/triggered-by"
LABEL_TRIGGERED_BY: Final = f"{GROUP}/triggered-by"
#: Argo CD's tracking annotation: a run that carries it is kept in git, so git decides how long
#: it lives (deleted here, Argo CD would create it again and it would run again): history
#: retention leaves it alone (docs/argocd.md).
ANNOTATION_ARGOCD_TRACKING: Final = "argocd.argoproj.io/tracking-id"
