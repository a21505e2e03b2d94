"""Registration of all h2crop modules into the registries."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module that registers into the ``h2crop`` registries.

    Args:
        init_default_scope: Whether to make ``h2crop`` the current default
            scope, so that configs without ``default_scope`` still build our
            modules first.
    """
    import h2crop.datasets  # noqa: F401
    import h2crop.engine  # noqa: F401
    import h2crop.evaluation  # noqa: F401
    import h2crop.models  # noqa: F401
    import h2crop.visualization  # noqa: F401

    if not init_default_scope:
        return
    never_created = (DefaultScope.get_current_instance() is None
                     or not DefaultScope.check_instance_created('h2crop'))
    if never_created:
        DefaultScope.get_instance('h2crop', scope_name='h2crop')
        return
    current = DefaultScope.get_current_instance()
    if current.scope_name != 'h2crop':
        warnings.warn('The current default scope '
                      f'"{current.scope_name}" is not "h2crop"; '
                      '`register_all_modules` makes a new default scope '
                      '"h2crop".', stacklevel=2)
        stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S%f')
        DefaultScope.get_instance(f'h2crop-{stamp}', scope_name='h2crop')
