"""``kfp-rai run --runner docker``: every task of the pipeline in the kfp-rai image, through
kfp.local's DockerRunner, with the same run directory, run.json and index.html as the default
(subprocess) runner.

Each task's container:

- runs the image named by ``--image`` (default: ``KFP_RAI_IMAGE`` or the release image, which
  ``make image`` builds; never pulled: a missing image is one line naming that command);
- as the calling user's uid:gid, so the outputs it writes in the pipeline root (bind-mounted at its
  own path by kfp.local) and in the registry stay the user's;
- with no network, a read-only root file system and a private ``/tmp`` (tmpfs), no capabilities
  and no privilege escalation;
- with the keys from the same places a local run reads them (see :mod:`kfp_rai.core.signing`):
  a key given as text in the environment is passed as that variable; a key file (given by its
  ``*_FILE`` variable, or the local default pair under ``~/.config/kfp-rai/keys``) is bind-mounted
  read-only under ``/var/run/secrets/kfp-rai/`` and its ``*_FILE`` variable names it there.
  Nothing is written into the image or the run directory. The decision key's private half never
  reaches a task (pipelines never decide): only its public half, which verifies the registry;
- with the data, current data, labels and audit log a run names bind-mounted read-only at their
  own paths, and the registry read-write at its own path (created first if missing).

kfp.local's DockerRunner takes every ``docker run`` option this needs (user, network, mounts,
environment, tmpfs, read_only) except one thing it does wrong for us, so one function is wrapped
(:func:`_run_container`, installed by :func:`init_docker`): kfp 2.17 starts containers with
``auto_remove=True`` and, when the container is gone before it asks for the exit code, assumes
success (``docker_task_handler.run_docker_container``) — a failed task could pass. Ours removes the
container only after reading its exit code, never pulls, labels each container with the run (so
``kfp-rai run`` removes what an interrupted run left), and prints the task's output line by line.

This module imports neither kfp nor docker at import time: the CLI uses it before anything runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from kfp_rai.errors import RAIError

LABEL = "kfp-rai.run"  # every task container of one `kfp-rai run` carries the run's id under this label
SECRETS_DIR = "/var/run/secrets/kfp-rai"  # where key files are mounted inside a task's container
BUILD_HINT = "build it with `make image` (without Docker Hub: `make image-debian`)"


class DockerUnavailable(RAIError):
    """No Docker engine, no docker package, or no image: the CLI says so in one line (exit 2)."""


def _client() -> Any:
    try:
        import docker
    except ImportError as exc:
        raise DockerUnavailable(
            "--runner docker needs the Python package docker (kfp.local's DockerRunner uses it): pip install docker"
        ) from exc
    client = None
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the engine (or its absence) says, one line
        if client is not None:
            client.close()
        raise DockerUnavailable(
            f"--runner docker: no Docker engine is running ({' '.join(str(exc).split())[:160]}): start one "
            "(e.g. dockerd), then build the image: make image"
        ) from exc
    return client


def check_engine(image: str) -> None:
    """A Docker engine answers and holds ``image``; otherwise :class:`DockerUnavailable`."""
    import docker

    client = _client()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise DockerUnavailable(
            f"--runner docker: the image {image} is not on this Docker engine: {BUILD_HINT}, or name one with --image"
        ) from exc
    except docker.errors.APIError as exc:
        raise DockerUnavailable(f"--runner docker: cannot inspect the image {image}: {exc.explanation}") from exc
    finally:
        client.close()


def _key_settings() -> tuple[dict[str, str], list[tuple[str, str, bool]]]:
    """The keys a task may read, as environment and read-only file mounts (see the module docstring)."""
    from kfp_rai.core.signing import DECISION_KEYS, MODEL_KEYS, config_dir
    from kfp_rai.errors import IntegrityError

    env: dict[str, str] = {}
    mounts: list[tuple[str, str, bool]] = []

    def mount_file(var: str, path: str | Path) -> None:
        source = str(Path(path).expanduser().resolve())
        if not Path(source).is_file():
            raise DockerUnavailable(f"{var}={path} names no file: the tasks could not read that key")
        target = f"{SECRETS_DIR}/{var.lower().removesuffix('_file').replace('_', '-')}"
        env[var] = target
        mounts.append((source, target, True))

    def one(text_env: str, file_env: str, default: Path | None) -> bool:
        if value := os.environ.get(text_env):
            env[text_env] = value
        elif path := os.environ.get(file_env):
            mount_file(file_env, path)
        elif default is not None and default.is_file():
            mount_file(file_env, default)
        else:
            return False
        return True

    keys = config_dir() / "keys"
    signs = one(MODEL_KEYS.private_env, MODEL_KEYS.private_file_env, keys / MODEL_KEYS.private_name)
    # The public half: as given, else (with a private key) derived from it inside, else the local default.
    one(MODEL_KEYS.public_env, MODEL_KEYS.public_file_env, None if signs else keys / MODEL_KEYS.public_name)
    # The decision key: its public half only, from where a local run finds it (derived from the
    # private half, on this side, when only that is configured).
    if not one(DECISION_KEYS.public_env, DECISION_KEYS.public_file_env, None):
        from kfp_rai.core.signing import verify_pem

        with contextlib.suppress(IntegrityError):  # none at all: the tasks fail closed, as locally
            env[DECISION_KEYS.public_env] = verify_pem(DECISION_KEYS).decode("utf-8")
    one("KFP_RAI_HMAC_KEY", "KFP_RAI_HMAC_KEY_FILE", None)
    one("KFP_RAI_AUDIT_KEY", "KFP_RAI_AUDIT_KEY_FILE", None)
    return env, mounts


# The pipeline arguments that name local files or directories a task reads; the registry is written.
_READ = ("data", "current_data", "labels", "audit_log")
_WRITTEN = ("registry_uri",)


def _path_mounts(arguments: dict[str, Any]) -> list[tuple[str, str, bool]]:
    mounts: dict[str, bool] = {}
    for name in (*_READ, *_WRITTEN):
        value = arguments.get(name)
        if not isinstance(value, str) or not value or value.startswith("bundled:"):
            continue
        flag = "--" + {"registry_uri": "registry", "current_data": "current"}.get(name, name).replace("_", "-")
        if "://" in value:
            raise DockerUnavailable(
                f"--runner docker runs every task without network: {flag} {value} cannot be read there; "
                "use a local copy, or the default runner"
            )
        path = Path(value)
        if name in _WRITTEN:
            path.mkdir(parents=True, exist_ok=True)  # a bind mount needs its source
        elif not path.exists():
            raise DockerUnavailable(f"{flag} {value} does not exist")
        mounts[str(path)] = mounts.get(str(path), False) or name in _WRITTEN
    return [(p, p, not written) for p, written in sorted(mounts.items())]


def task_settings(arguments: dict[str, Any], *, image: str, run_id: str) -> dict[str, Any]:
    """What every task's container gets (JSON, for the pipeline's child process)."""
    key_env, key_mounts = _key_settings()
    env = {
        **key_env,
        "KFP_RAI_IMAGE": image,  # the deploy step names the image it runs in
        "HOME": "/tmp",  # nosec B108 - the container's own tmpfs
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("USER", "LOGNAME"):  # who the registration's record says ran it (the uid has no passwd entry)
        if value := os.environ.get(name):
            env[name] = value
    return {
        "image": image,
        "run_id": run_id,
        "user": f"{os.getuid()}:{os.getgid()}",
        "hostname": socket.gethostname()[:63],  # records say where a task ran: this machine
        "environment": env,
        "mounts": key_mounts + _path_mounts(arguments),
    }


def docker_runner(settings: dict[str, Any]) -> Any:
    """kfp.local's DockerRunner for ``settings`` (:func:`task_settings`)."""
    from docker.types import Mount
    from kfp import local

    return local.DockerRunner(
        user=settings["user"],
        network_mode="none",
        read_only=True,
        tmpfs={"/tmp": "rw,noexec,nosuid,nodev"},  # nosec B108 - the container's own tmpfs
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        hostname=settings["hostname"],
        environment=settings["environment"],
        mounts=[Mount(target=t, source=s, type="bind", read_only=ro) for s, t, ro in settings["mounts"]],
        labels={LABEL: settings["run_id"]},
    )


def init_docker(settings: dict[str, Any]) -> Any:
    """Install :func:`_run_container` in kfp.local and return the runner for ``settings``."""
    from kfp.local import docker_task_handler

    if not hasattr(docker_task_handler, "run_docker_container"):
        import kfp

        raise RuntimeError(
            f"kfp {kfp.__version__} changed kfp.local's docker task handler, which kfp-rai wraps so that a "
            "failed task never passes; use kfp 2.17 or update kfp_rai/pipelines/docker.py"
        )
    docker_task_handler.run_docker_container = _run_container
    return docker_runner(settings)


def _run_container(client: Any, image: str, command: list[str], volumes: dict[str, Any], **run_args: Any) -> int:
    """kfp.local's ``run_docker_container``, narrowed: the exit code is read before the container
    is removed (kfp's ``auto_remove=True`` can lose it and then assumes success), the image is
    never pulled, and the output is printed line by line as the subprocess runner prints it."""
    import docker

    run_args.pop("auto_remove", None)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise RuntimeError(f"the image {image} is not on this Docker engine: {BUILD_HINT}") from exc
    container = client.containers.run(image=image, command=command, detach=True, volumes=volumes, **run_args)
    try:
        pending = b""
        for chunk in container.logs(stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                print(line.decode("utf-8", errors="replace"))
        if pending:
            print(pending.decode("utf-8", errors="replace"))
        return int(container.wait()["StatusCode"])
    finally:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)


def remove_containers(run_id: str) -> int:
    """Remove every container of run ``run_id`` still there (an interrupted run); return how many."""
    try:
        import docker

        client = docker.from_env(timeout=30)
    except Exception:  # noqa: BLE001 - no engine, no containers to remove
        return 0
    removed = 0
    try:
        for container in client.containers.list(all=True, filters={"label": f"{LABEL}={run_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
                removed += 1
    except docker.errors.APIError:
        pass
    finally:
        client.close()
    return removed
