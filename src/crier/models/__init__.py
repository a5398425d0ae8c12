"""ORM models, one module per table family. Importing this package registers them all."""

from crier.models.analytics import (
    AnalyticsExport,
    AnalyticsGeneration,
    AnalyticsRollup,
    AnalyticsSnapshot,
    AnalyticsView,
    MetricFetch,
    MetricObservation,
)
from crier.models.base import Base, TenantModel
from crier.models.delivery import Delivery, DeliveryAttempt
from crier.models.idempotency import IdempotencyKey
from crier.models.media import MediaAsset
from crier.models.member import ApiKey, Member, User
from crier.models.oauth import OAuthGrant, OAuthState, PlatformApp
from crier.models.post import Post, PostMedia, PostTarget, ScheduledPostMonth
from crier.models.review import (
    Review,
    ReviewAlert,
    ReviewAlertRule,
    ReviewFeed,
    ReviewReplyRecord,
    ReviewSync,
    ReviewTemplate,
)
from crier.models.scheduler import SchedulerWorker
from crier.models.social_account import SocialAccount
from crier.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from crier.models.workspace import Workspace

__all__ = [
    "AnalyticsExport",
    "AnalyticsGeneration",
    "AnalyticsRollup",
    "AnalyticsSnapshot",
    "AnalyticsView",
    "ApiKey",
    "Base",
    "Delivery",
    "DeliveryAttempt",
    "IdempotencyKey",
    "MediaAsset",
    "Member",
    "MetricFetch",
    "MetricObservation",
    "OAuthGrant",
    "OAuthState",
    "PlatformApp",
    "Post",
    "PostMedia",
    "PostTarget",
    "Review",
    "ReviewAlert",
    "ReviewAlertRule",
    "ReviewFeed",
    "ReviewReplyRecord",
    "ReviewSync",
    "ReviewTemplate",
    "ScheduledPostMonth",
    "SchedulerWorker",
    "SocialAccount",
    "TenantModel",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
    "Workspace",
]
