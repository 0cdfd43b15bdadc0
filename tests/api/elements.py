"""One small diagram per BPMN element type the engine runs (tests/api/test_elements.py):
each is a process body wrapped in the same definitions, with the messages, signals, errors
and escalations they name declared once."""

from __future__ import annotations

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="defs_{key}" targetNamespace="http://tsunagu.example/test">
  <bpmn:message id="msg_interrupt" name="el_interrupt" />
  <bpmn:message id="msg_cancel" name="el_cancel" />
  <bpmn:message id="msg_reply" name="el_reply" />
  <bpmn:message id="msg_receive" name="el_receive" />
  <bpmn:signal id="sig_go" name="el_go" />
  <bpmn:error id="err_fail" name="el_fail" errorCode="fail" />
  <bpmn:escalation id="esc_up" name="el_up" escalationCode="up" />
  <bpmn:process id="{key}" name="{key}" isExecutable="true">
"""
TAIL = """  </bpmn:process>
</bpmn:definitions>
"""


def flow(source: str, target: str, fid: str | None = None) -> str:
    return f'<bpmn:sequenceFlow id="{fid or f"f_{source}_{target}"}" sourceRef="{source}" targetRef="{target}" />\n'


def chain(*ids: str) -> str:
    return "".join(flow(a, b) for a, b in zip(ids, ids[1:], strict=False))


START = '<bpmn:startEvent id="start" />\n'
END = '<bpmn:endEvent id="end" />\n'

BODIES: dict[str, str] = {
    "el_plain_task": START + END + """
<bpmn:task id="look" name="書類を確認する"><bpmn:documentation>届いた書類がそろっているか確かめてください。</bpmn:documentation></bpmn:task>
""" + chain("start", "look", "end"),
    "el_manual_task": START + END + """
<bpmn:manualTask id="visit" name="訪問する"><bpmn:documentation>自宅を訪問して様子を確かめる。</bpmn:documentation></bpmn:manualTask>
""" + chain("start", "visit", "end"),
    "el_user_task_no_form": START + END + '<bpmn:userTask id="ok" name="了承" />\n' + chain("start", "ok", "end"),
    "el_camunda_form_key": START + END + """
<bpmn:userTask id="advise" name="助言" camunda:formKey="advice" />
""" + chain("start", "advise", "end"),
    "el_camunda_form_data": START + END + """
<bpmn:userTask id="note" name="メモ" camunda:formKey="Note form">
  <bpmn:extensionElements><camunda:formData>
    <camunda:formField id="note_text" label="メモ" type="string">
      <camunda:validation><camunda:constraint name="required" /></camunda:validation>
    </camunda:formField>
    <camunda:formField id="level" label="段階" type="enum" defaultValue="low">
      <camunda:value id="low" name="低" /><camunda:value id="high" name="高" />
    </camunda:formField>
  </camunda:formData></bpmn:extensionElements>
</bpmn:userTask>
""" + chain("start", "note", "end"),
    "el_spiff_form": START + END + """
<bpmn:userTask id="ack" name="受領確認">
  <bpmn:extensionElements><spiffworkflow:properties>
    <spiffworkflow:property name="formJsonSchemaFilename" value="advice_ack.json" />
  </spiffworkflow:properties></bpmn:extensionElements>
</bpmn:userTask>
""" + chain("start", "ack", "end"),
    "el_event_subprocess": START + END + """
<bpmn:userTask id="wait_here" name="待機" />
<bpmn:subProcess id="on_interrupt" triggeredByEvent="true">
  <bpmn:startEvent id="interrupt_start" isInterrupting="false"><bpmn:messageEventDefinition messageRef="msg_interrupt" /></bpmn:startEvent>
  <bpmn:userTask id="handle_interrupt" name="割込み対応" />
  <bpmn:endEvent id="interrupt_end" />
""" + chain("interrupt_start", "handle_interrupt", "interrupt_end") + """</bpmn:subProcess>
""" + chain("start", "wait_here", "end"),
    "el_parallel_mi": START + END + """
<bpmn:userTask id="each" name="各機関の確認">
  <bpmn:multiInstanceLoopCharacteristics><bpmn:loopCardinality>3</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>
</bpmn:userTask>
""" + chain("start", "each", "end"),
    "el_sequential_mi": START + END + """
<bpmn:userTask id="each" name="順に確認">
  <bpmn:multiInstanceLoopCharacteristics isSequential="true"><bpmn:loopCardinality>2</bpmn:loopCardinality></bpmn:multiInstanceLoopCharacteristics>
</bpmn:userTask>
""" + chain("start", "each", "end"),
    "el_standard_loop": START + END + """
<bpmn:userTask id="again" name="繰り返し">
  <bpmn:extensionElements><camunda:formData>
    <camunda:formField id="done" label="終わり" type="boolean" />
  </camunda:formData></bpmn:extensionElements>
  <bpmn:standardLoopCharacteristics loopMaximum="5"><bpmn:loopCondition>not done</bpmn:loopCondition></bpmn:standardLoopCharacteristics>
</bpmn:userTask>
""" + chain("start", "again", "end"),
    "el_boundary_timer": START + END + """
<bpmn:userTask id="slow" name="対応" />
<bpmn:boundaryEvent id="late" name="1時間経過" attachedToRef="slow" cancelActivity="true">
  <bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>
</bpmn:boundaryEvent>
<bpmn:endEvent id="end_late" />
""" + chain("start", "slow", "end") + chain("late", "end_late"),
    "el_boundary_message": START + END + """
<bpmn:userTask id="work" name="作業" />
<bpmn:boundaryEvent id="cancelled" name="取消" attachedToRef="work" cancelActivity="true">
  <bpmn:messageEventDefinition messageRef="msg_cancel" />
</bpmn:boundaryEvent>
<bpmn:endEvent id="end_cancelled" />
""" + chain("start", "work", "end") + chain("cancelled", "end_cancelled"),
    "el_boundary_error": START + END + """
<bpmn:subProcess id="attempt" name="試行">
  <bpmn:startEvent id="attempt_start" />
  <bpmn:endEvent id="attempt_fail"><bpmn:errorEventDefinition errorRef="err_fail" /></bpmn:endEvent>
""" + chain("attempt_start", "attempt_fail") + """</bpmn:subProcess>
<bpmn:boundaryEvent id="failed" name="失敗" attachedToRef="attempt"><bpmn:errorEventDefinition errorRef="err_fail" /></bpmn:boundaryEvent>
<bpmn:userTask id="recover" name="失敗への対応" />
""" + chain("start", "attempt", "end") + chain("failed", "recover", "end_recovered") + """
<bpmn:endEvent id="end_recovered" />
""",
    "el_boundary_escalation": START + END + """
<bpmn:subProcess id="inner" name="内側">
  <bpmn:startEvent id="inner_start" />
  <bpmn:intermediateThrowEvent id="raise_up"><bpmn:escalationEventDefinition escalationRef="esc_up" /></bpmn:intermediateThrowEvent>
  <bpmn:userTask id="inner_task" name="内側の作業" />
  <bpmn:endEvent id="inner_end" />
""" + chain("inner_start", "raise_up", "inner_task", "inner_end") + """</bpmn:subProcess>
<bpmn:boundaryEvent id="escalated" name="報告" attachedToRef="inner" cancelActivity="false">
  <bpmn:escalationEventDefinition escalationRef="esc_up" />
</bpmn:boundaryEvent>
<bpmn:userTask id="report" name="上申への対応" />
<bpmn:endEvent id="end_report" />
""" + chain("start", "inner", "end") + chain("escalated", "report", "end_report"),
    "el_message_catch": START + END + """
<bpmn:intermediateCatchEvent id="reply" name="返信"><bpmn:messageEventDefinition messageRef="msg_reply" /></bpmn:intermediateCatchEvent>
""" + chain("start", "reply", "end"),
    "el_receive_task": START + END + """
<bpmn:receiveTask id="receive" name="受信" messageRef="msg_receive" />
""" + chain("start", "receive", "end"),
    "el_signal": START + END + """
<bpmn:parallelGateway id="split" />
<bpmn:intermediateCatchEvent id="hear" name="合図待ち"><bpmn:signalEventDefinition signalRef="sig_go" /></bpmn:intermediateCatchEvent>
<bpmn:userTask id="decide" name="合図を出す" />
<bpmn:intermediateThrowEvent id="shout"><bpmn:signalEventDefinition signalRef="sig_go" /></bpmn:intermediateThrowEvent>
<bpmn:endEvent id="end_shout" />
""" + chain("start", "split") + flow("split", "hear") + flow("split", "decide") + chain("hear", "end")
      + chain("decide", "shout", "end_shout"),
}


def diagram(key: str) -> str:
    return HEAD.format(key=key) + BODIES[key] + TAIL
