"""Console-script entry points, kept tiny: cached help is answered before knack is imported."""
import sys


def _main(cli_name):
    argv = sys.argv[1:]
    from .helpcache import serve_cached_help
    code = serve_cached_help(argv, cli_name)
    if code is None:
        from .cli import main
        code = main(argv, cli_name=cli_name)
    sys.exit(code)


def run():
    _main("oncall")


def run_kubectl():
    _main("kubectl oncall")
