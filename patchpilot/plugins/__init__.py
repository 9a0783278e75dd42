"""Hosting third-party plugins (VST3 through pedalboard): finding, loading, describing their
parameters, saving and restoring their state, and keeping their console chatter off ours.

The small API other modules use (the instrument engine in ``synths/vst3.py``; an effect chain
loading user-named VST3 effects): :func:`load_plugin_by_name_or_path`,
:func:`quiet_plugin_output` around every call into a plugin, :func:`describe_parameters`
(:class:`ParameterInfo`), :func:`save_state` / :func:`load_state`, and :class:`PluginHolder`
to free a plugin quietly."""

from patchpilot.plugins.host import (
    ParameterInfo,
    PluginHolder,
    PluginLoadError,
    describe_parameters,
    find_plugin,
    installed_plugins,
    load_plugin_by_name_or_path,
    load_state,
    might_be_instrument,
    quiet_plugin_output,
    save_state,
    vst3_folders,
)

__all__ = ["ParameterInfo", "PluginHolder", "PluginLoadError", "describe_parameters", "find_plugin",
           "installed_plugins", "load_plugin_by_name_or_path", "load_state", "might_be_instrument",
           "quiet_plugin_output", "save_state", "vst3_folders"]
