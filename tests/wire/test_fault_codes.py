"""The fault classes of ``sim.errors``: each names its standard code, the table of codes
holds every one once, and exactly the faults a client recovers from say so."""

from __future__ import annotations

import pickle

import sim.errors as errors


def test_each_fault_code_is_its_class_name_under_its_specification_prefix():
    assert errors.InvalidSecurityToken("r").code == "wsse:InvalidSecurityToken"
    assert errors.InvalidRequest("r").code == "wst:InvalidRequest"
    assert errors.RenewNeeded("r").code == "wsc:RenewNeeded"
    for code, cls in errors.FAULTS_BY_CODE.items():
        assert code == f"{cls.prefix}:{cls.__name__}"
    assert len(errors.FAULTS_BY_CODE) == 17


def test_a_finer_kind_of_fault_keeps_the_code_it_refines():
    fault = errors.MalformedMessage("not well-formed", check="parser")
    assert isinstance(fault, errors.InvalidSecurity)
    assert fault.code == "wsse:InvalidSecurity"
    assert errors.FAULTS_BY_CODE["wsse:InvalidSecurity"] is errors.InvalidSecurity


def test_only_faults_a_client_recovers_from_are_recoverable():
    recoverable = {cls.__name__ for cls in errors.FAULTS_BY_CODE.values() if cls.recoverable}
    assert recoverable == {
        "ExpiredData",
        "BadContextToken",
        "UnknownDerivationSource",
        "RenewNeeded",
    }
    assert not errors.MalformedMessage.recoverable


def test_a_fault_travels_between_processes_with_its_check():
    fault = pickle.loads(pickle.dumps(errors.BadContextToken("gone", check="context")))
    assert (type(fault), fault.reason, fault.check) == (errors.BadContextToken, "gone", "context")
