"""`--push-to-hub REPO`: upload a written model folder to the Hugging Face hub with huggingface_hub.

The folder is complete on disk before anything is sent, so a failed push loses nothing: it can
be pushed again later (`hf upload REPO FOLDER`).
"""

from __future__ import annotations

from pathlib import Path

from headstart.errors import UsageError

PUSH_HELP = "also upload the written model folder to this Hugging Face hub repo (needs a network and `hf auth login`)"


def check_repo_id(repo_id: str | None) -> None:
    """A malformed id is refused before any work is done (so `headstart run` refuses one before any step);
    None is nothing to push."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id is None:
        return
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UsageError(f"--push-to-hub {repo_id!r} is not a hub repo id",
                         "use owner/name, e.g. me/my-student") from None


def push_to_hub(folder: Path, repo_id: str) -> str:
    """Create `repo_id` if needed and upload `folder` to it; returns the commit's URL."""
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        return str(api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Upload from headstart"))
    except Exception as err:  # offline, unauthenticated, refused: the same to the user
        raise UsageError(f"cannot push {folder} to the hub repo {repo_id!r} ({type(err).__name__})",
                         f"check the network and `hf auth login`; the folder is written, push it later with "
                         f"`hf upload {repo_id} {folder}`") from None
