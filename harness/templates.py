"""A stack's processed template (``GetTemplate``, ``TemplateStage=Processed``: SAM already expanded).

Two jobs read it: the fidelity warnings after the deploy and the
retained-resources handling before the teardown's delete. A run reads each
stack's template once and both use that copy (``StackOps.template``); the
template does not change between the deploy and the teardown, since the run
deploys before either reads it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any


def read(cfn: Any, stack: str) -> Mapping[str, Any]:
    """The processed template of ``stack`` (name or id), parsed. Raises what the call raises."""
    return parse(cfn.get_template(StackName=stack, TemplateStage="Processed")["TemplateBody"])


def parse(body: Any) -> Mapping[str, Any]:
    """A ``GetTemplate`` ``TemplateBody``: a dict already, or JSON / YAML text (short-form tags kept as data)."""
    if isinstance(body, Mapping):  # botocore decodes a JSON body
        return body
    text = str(body or "")
    try:
        loaded = json.loads(text)
    except ValueError:
        import yaml

        loaded = yaml.load(text, Loader=_loader())  # noqa: S506 - a safe loader subclass
    return loaded if isinstance(loaded, Mapping) else {}


@functools.cache
def _loader() -> type:
    """SafeLoader that reads CloudFormation's short-form tags (!Ref, !GetAtt, !Sub...) as their long form."""
    import yaml

    class TemplateLoader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    TemplateLoader.add_multi_constructor("!", intrinsic)
    return TemplateLoader
