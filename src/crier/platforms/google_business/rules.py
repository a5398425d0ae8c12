"""What Google Business Profile accepts in a local post (developers.google.com: my-business/
reference/rest/v4/accounts.locations.localPosts; my-business/content/posts-data).

A "What's new" post (`STANDARD`) has a summary of at most 1,500 characters, at most one
photo (Google fetches it from the media's URL) and, if asked, a call-to-action button:
`BOOK`, `ORDER`, `SHOP`, `LEARN_MORE` or `SIGN_UP` with the page it opens, or `CALL`
(the location's phone number, no page).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from crier.platforms.content import PlatformRules


class CallToAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["BOOK", "ORDER", "SHOP", "LEARN_MORE", "SIGN_UP", "CALL"] = Field(
        description="The button's label (`CALL` dials the location's phone number)."
    )
    url: AnyHttpUrl | None = Field(
        default=None, description="The page the button opens: required, but for `CALL`."
    )

    @model_validator(mode="after")
    def _url_as_the_type_wants(self) -> CallToAction:
        if self.type == "CALL" and self.url is not None:
            raise ValueError("a CALL button has no url")
        if self.type != "CALL" and self.url is None:
            raise ValueError(f"a {self.type} button needs the url it opens")
        return self


class GoogleBusinessSettings(BaseModel):
    """A target's `platform_settings` on Google Business Profile (a local post)."""

    model_config = ConfigDict(extra="forbid")

    call_to_action: CallToAction | None = Field(
        default=None, description="A button under the post."
    )
    language: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        description="The post's language (BCP 47, such as `en-US`).",
    )


GOOGLE_BUSINESS = PlatformRules(
    max_text=1500,
    max_media=1,
    media_kinds=frozenset({"image"}),
    preferred_crop="landscape",
    settings=GoogleBusinessSettings,
)
