"""Speech-to-text, language-model and text-to-speech providers behind one set of interfaces.

:mod:`voicecore.providers.base` defines the typed protocols every adapter implements; the
runtime only talks to those. Each concrete adapter pairs a pure protocol module in
``voicecore.sansio`` with a thin asyncio client here.
"""
