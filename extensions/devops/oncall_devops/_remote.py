"""Where the organization and project come from when no flag or config names them: the Azure Repos
remote of the current Git repository. Standard library only (no SDK)."""
import re
import subprocess
import urllib.parse

DEV_AZURE = "https://dev.azure.com"

# https://dev.azure.com/ORG/PROJECT/_git/REPO  (also https://ORG@dev.azure.com/...)
_DEV = re.compile(r"^https?://(?:[^@/]+@)?dev\.azure\.com/(?P<org>[^/]+)/(?P<project>[^/]+)/_git/(?P<repo>[^/?#]+)",
                  re.IGNORECASE)
# git@ssh.dev.azure.com:v3/ORG/PROJECT/REPO
_SSH = re.compile(r"^(?:ssh://)?[^@]+@ssh\.dev\.azure\.com(?::22)?[:/]v3/(?P<org>[^/]+)/(?P<project>[^/]+)/"
                  r"(?P<repo>[^/?#]+)", re.IGNORECASE)
# https://ORG.visualstudio.com[/DefaultCollection]/PROJECT/_git/REPO
_VS = re.compile(r"^https?://(?:[^@/]+@)?(?P<org>[^./]+)\.visualstudio\.com/(?:DefaultCollection/)?(?P<project>[^/]+)/"
                 r"_git/(?P<repo>[^/?#]+)", re.IGNORECASE)
# ORG@vs-ssh.visualstudio.com:v3/ORG/PROJECT/REPO
_VS_SSH = re.compile(r"^(?:ssh://)?[^@]+@vs-ssh\.visualstudio\.com(?::22)?[:/]v3/(?P<org>[^/]+)/(?P<project>[^/]+)/"
                     r"(?P<repo>[^/?#]+)", re.IGNORECASE)


def parse_remote(url):
    """{'organization': org URL, 'project', 'repository'} for an Azure Repos remote URL, else None."""
    url = (url or "").strip()
    for pattern, org_url in ((_DEV, lambda org: f"{DEV_AZURE}/{org}"), (_SSH, lambda org: f"{DEV_AZURE}/{org}"),
                             (_VS, lambda org: f"https://{org}.visualstudio.com"),
                             (_VS_SSH, lambda org: f"https://{org}.visualstudio.com")):
        m = pattern.match(url)
        if m:
            repo = m.group("repo")
            if repo.endswith(".git"):
                repo = repo[:-4]
            return {"organization": org_url(urllib.parse.unquote(m.group("org"))),
                    "project": urllib.parse.unquote(m.group("project")),
                    "repository": urllib.parse.unquote(repo), "remote": _strip_userinfo(url)}
    return None


def _strip_userinfo(url):
    # https://user:token@dev.azure.com/... must never be shown
    return re.sub(r"^(https?://)[^@/]+@", r"\1", url)


def remote_of_cwd(cwd=None):
    """The Azure Repos remote of the Git repository at ``cwd`` (origin first), or None.

    Reads the repository's configuration with ``git config`` (read-only); no git, no repository or
    no Azure Repos remote all give None."""
    try:
        proc = subprocess.run(["git", "config", "--get-regexp", r"^remote\..*\.url$"], cwd=cwd, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    remotes = []
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        name = key[len("remote."):-len(".url")]
        remotes.append((name != "origin", name, value))
    for _, name, value in sorted(remotes):
        parsed = parse_remote(value)
        if parsed:
            parsed["remoteName"] = name
            return parsed
    return None


def organization_url(value):
    """An organization URL from what a user types: a URL (kept, less a trailing slash) or a bare name."""
    value = (value or "").strip()
    if not value:
        return None
    if "://" in value:
        return value.rstrip("/")
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,49}", value):
        return f"{DEV_AZURE}/{value}"
    return None


def split_project_url(url):
    """https://dev.azure.com/ORG/PROJECT[/...] -> (org URL, project); other URLs -> (url, None)."""
    m = re.match(r"^(https://dev\.azure\.com/[^/]+)/([^/_][^/]*)(?:/.*)?$", url, re.IGNORECASE)
    if m:
        return m.group(1), urllib.parse.unquote(m.group(2))
    m = re.match(r"^(https://[^./]+\.visualstudio\.com)/(?:DefaultCollection/)?([^/_][^/]*)(?:/.*)?$", url, re.IGNORECASE)
    if m:
        return m.group(1), urllib.parse.unquote(m.group(2))
    return url, None


def same_organization(a, b):
    return bool(a and b) and a.rstrip("/").lower() == b.rstrip("/").lower()
