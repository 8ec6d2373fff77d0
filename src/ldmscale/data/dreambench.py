"""DreamBooth's prompts: what a subject is trained on ("a <token> <class noun>"), its class
images' prompt ("a <class noun>", the DreamBooth paper's §3.3) and the evaluation prompts of
DreamBench (Ruiz et al., 2023, google/dreambooth dataset/prompts_and_classes.txt), 25 per
subject in three kinds:

- recontextualisation (the subject somewhere else: "a sks dog on the beach"),
- accessorisation (live subjects only: "a sks dog wearing a red hat"),
- property change ("a red sks backpack").

Objects take DreamBench's object list (20 recontextualisations, 5 property changes), live
subjects its live list (10, 10 accessorisations, 5). An embedded subject takes the same
structure in the domain's vocabulary (`embedded_prompts`): 15 recontextualisations (every
position, with no size, small and large) and 10 property changes (each colour but its own,
alone and large at the bottom right); the domain has no accessories. Each of its prompts
states the attributes the evaluator can check (`SubjectPrompt.stated`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldmscale.config.stages import Subject
from ldmscale.data.shapes import ATTRIBUTES

RECONTEXTUALISATION, ACCESSORISATION, PROPERTY = (
    "recontextualisation",
    "accessorisation",
    "property change",
)
KINDS = (RECONTEXTUALISATION, ACCESSORISATION, PROPERTY)

PLACES = (
    "in the jungle", "in the snow", "on the beach", "on a cobblestone street",
    "on top of pink fabric", "on top of a wooden floor", "with a city in the background",
    "with a mountain in the background", "with a blue house in the background",
    "on top of a purple rug in a forest",
)  # fmt: skip
"""The recontextualisations of both lists."""
OBJECT_PLACES = (
    "with a wheat field in the background",
    "with a tree and autumn leaves in the background",
    "with the Eiffel Tower in the background", "floating on top of water",
    "floating in an ocean of milk", "on top of green grass with sunflowers around it",
    "on top of a mirror", "on top of the sidewalk in a crowded street",
    "on top of a dirt road", "on top of a white rug",
)  # fmt: skip
"""The object list's further recontextualisations."""
OUTFITS = (
    "wearing a red hat", "wearing a santa hat", "wearing a rainbow scarf",
    "wearing a black top hat and a monocle", "in a chef outfit", "in a firefighter outfit",
    "in a police outfit", "wearing pink glasses", "wearing a yellow shirt",
    "in a purple wizard outfit",
)  # fmt: skip
"""The live list's accessorisations."""
PROPERTIES = ("red", "purple", "shiny", "wet", "cube shaped")
"""The property changes of both lists (an adjective before the subject)."""


@dataclass(frozen=True)
class SubjectPrompt:
    """One evaluation prompt of a subject."""

    text: str
    kind: str
    """`RECONTEXTUALISATION`, `ACCESSORISATION` or `PROPERTY`."""
    stated: dict[str, str] = field(default_factory=dict)
    """Embedded subjects: the attribute values the prompt states (`colour`, `size`,
    `position`), which prompt fidelity checks and the ceiling's renders show."""

    def labels(self) -> list[int]:
        """The stated attributes as label indices in the order of `ATTRIBUTES` (-1: unstated)."""
        return [
            ATTRIBUTES[name].index(self.stated[name]) if name in self.stated else -1
            for name in ATTRIBUTES
        ]


def instance_prompt(subject: Subject) -> str:
    """What the subject's images are captioned with: "a <token> <class noun>"."""
    return f"a {subject.token} {subject.class_noun}"


def class_prompt(class_noun: str) -> str:
    """What the class images are generated from: "a <class noun>"."""
    return f"a {class_noun}"


def subject_prompts(subject: Subject, colour: str = "") -> list[SubjectPrompt]:
    """The subject's evaluation prompts (module docstring); `colour`: an embedded subject's own
    colour (left out of its property changes)."""
    name = f"{subject.token} {subject.class_noun}"
    if subject.images == "embedded":
        return embedded_prompts(name, colour)
    places = PLACES + (() if subject.live else OBJECT_PLACES)
    found = [SubjectPrompt(f"a {name} {place}", RECONTEXTUALISATION) for place in places]
    if subject.live:
        found += [SubjectPrompt(f"a {name} {outfit}", ACCESSORISATION) for outfit in OUTFITS]
    return found + [SubjectPrompt(f"a {adjective} {name}", PROPERTY) for adjective in PROPERTIES]


def prompts_for(name: str, subject: Subject) -> list[SubjectPrompt]:
    """The evaluation prompts of the subject called `name` (an embedded subject's own colour
    is left out of its property changes)."""
    from ldmscale.data.subjects import embedded

    colour = embedded(name).colour if subject.images == "embedded" else ""
    return subject_prompts(subject, colour)


def _where(position: str) -> str:
    return "in the center" if position == "center" else f"at the {position}"


def embedded_prompts(name: str, colour: str) -> list[SubjectPrompt]:
    """The embedded domain's list for the subject called `name` ("sks circle") whose own colour
    is `colour`, in the domain's caption grammar ("a large red sks circle at the top left")."""
    found = []
    for position in ATTRIBUTES["position"]:
        for size in ("", "small", "large"):
            stated = {"position": position, **({"size": size} if size else {})}
            words = " ".join(w for w in ("a", size, name, _where(position)) if w)
            found.append(SubjectPrompt(words, RECONTEXTUALISATION, stated))
    for other in (c for c in ATTRIBUTES["colour"] if c != colour):
        found.append(SubjectPrompt(f"a {other} {name}", PROPERTY, {"colour": other}))
        stated = {"colour": other, "size": "large", "position": "bottom right"}
        found.append(SubjectPrompt(f"a large {other} {name} at the bottom right", PROPERTY, stated))
    return found
