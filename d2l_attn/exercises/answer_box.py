"""The notebook answer box of an exercise (ipywidgets core API, common to versions 7 and 8).

Displaying a box shows two outputs: the exercise's title line as plain HTML
(``<div class="d2l-exercise" data-exercise-id=...>``) and the widget itself. In Jupyter,
JupyterLab and Colab the widget runs the Python checker. On the book's static web page the widget
has no kernel; the title line marks where the browser checker (``book/_ext/exercises.js``) puts
its own answer form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["box_class", "text_box", "build_widget"]

_BOX_CLASS = None


def box_class() -> type[ipywidgets.VBox]:
    """A VBox that displays the exercise's title line before itself.

    ipywidgets 7 displays widgets through ``_ipython_display_``, ipywidgets 8 through
    ``_repr_mimebundle_``; this class defines the former (IPython prefers it) and delegates to
    whichever the parent class has.
    """
    global _BOX_CLASS
    if _BOX_CLASS is None:
        import ipywidgets as widgets
        from IPython.display import HTML, display

        class ExerciseBox(widgets.VBox):
            def _ipython_display_(self, **kwargs):
                display(HTML(getattr(self, "_d2l_marker", "")))
                parent = getattr(super(), "_ipython_display_", None)
                if parent is not None:  # ipywidgets 7
                    parent(**kwargs)
                else:  # ipywidgets 8
                    display(super()._repr_mimebundle_(**kwargs), raw=True)

        _BOX_CLASS = ExerciseBox
    return _BOX_CLASS


def text_box(placeholder: str) -> tuple[ipywidgets.Text, Callable[[], str]]:
    """A text field and the function that reads it."""
    import ipywidgets as widgets

    box = widgets.Text(placeholder=placeholder, description="Answer:", layout=widgets.Layout(width="90%"))
    return box, lambda: box.value


def build_widget(exercise) -> ipywidgets.VBox:
    """Answer controls, a *Check* button and an output area; the box counts its own attempts
    (wrong answers only: malformed input and the starter are not attempts)."""
    import ipywidgets as widgets
    from IPython.display import HTML, display

    controls = exercise._controls()
    if controls is None:
        raise TypeError(f"{exercise.id} is answered in code: call check({exercise.id!r}, your_answer)")
    chooser, read = controls
    button = widgets.Button(description="Check", button_style="primary")
    output = widgets.Output()
    wrong = [0]

    def on_click(_):
        verdict = exercise.evaluate(read())
        feedback = exercise.feedback(verdict, wrong[0])
        if verdict.status == "wrong":
            wrong[0] += 1
        box._d2l_last = feedback  # the latest feedback, for tests
        output.clear_output()
        with output:
            display(HTML(feedback._repr_html_()))

    button.on_click(on_click)
    box = box_class()([chooser, button, output])
    box._d2l_marker = exercise.marker_html()
    return box
