"""Identity's domain errors and the problem each is answered with (``PROBLEMS``).

Identity also raises the shared ``WeakPassword`` (a new password breaks the policy)
and ``OperatorsOnly``; their rows are the runtime's.
"""

from __future__ import annotations

from prodigy_users.runtime.errors import DomainError, ProblemType


class InvalidCredentials(DomainError):
    """No account has this email and password (which of the two is wrong is not said)."""

    default_detail = "Email or password is wrong."


class AccountNotFound(DomainError):
    """There is no account with this id."""

    default_detail = "There is no such account."


class LinkInvalid(DomainError):
    """A set-password, reset or confirmation token that was never issued (or is used for
    what it was not issued for)."""

    default_detail = "This link is not valid."


class LinkUsed(DomainError):
    """A set-password or reset token that has been used already."""

    default_detail = "This link has already been used."


class LinkExpired(DomainError):
    """A set-password or reset token past its expiry."""

    default_detail = "This link has expired; ask for a new one."


class EmailNotConfirmed(DomainError):
    """The password is right, but the account's address was never confirmed (it was made
    by registering, and the link emailed to the address has not been used)."""

    def __init__(self, email: str) -> None:
        super().__init__(
            f"Confirm your email first: we sent a link to {email}. Open it to finish "
            "registering, or ask for the link again.",
            extra={"email": email},
        )


class WrongRegistrationPassword(DomainError):
    """A confirmation link used with another password than the one chosen when registering."""

    default_detail = "That is not the password you chose when you registered."

    def __init__(self) -> None:
        super().__init__(errors=[{"field": "password", "message": "not the password you chose"}])


class WrongCurrentPassword(DomainError):
    """A change that needs the account's current password got another one."""

    default_detail = "That is not your current password."

    def __init__(self) -> None:
        super().__init__(errors=[{"field": "password", "message": "not your current password"}])


class SameEmail(DomainError):
    """A new login email that is the current one (case aside)."""

    default_detail = "That is already your login email."

    def __init__(self) -> None:
        super().__init__(errors=[{"field": "email", "message": "already your login email"}])


class EmailTaken(DomainError):
    """An email-change link used after another account came to hold its address.

    Said only to whoever opens the link sent to that address: asking for the change
    answers the same whether or not the address is taken."""

    default_detail = (
        "This address belongs to another account, so it cannot become your login email. "
        "Your login email has not changed."
    )


class LoginEmailNotRemovable(DomainError):
    """Unlinking the account's login email: it is how the person signs in."""

    default_detail = (
        "That is your login email: it cannot be removed. Change your login email first."
    )


class AddressNotFound(DomainError):
    """No address with this id belongs to the caller's account."""

    default_detail = "You have no such address."


class AddressAlreadyYours(DomainError):
    """Asking to link an address the caller's account holds already."""

    default_detail = "That address is already one of yours."

    def __init__(self) -> None:
        super().__init__(errors=[{"field": "email", "message": "already one of your addresses"}])


class MergeIntoItself(DomainError):
    """A merge whose two accounts are one."""

    default_detail = "An account cannot be merged into itself: give two different accounts."


class AccountAlreadyMerged(DomainError):
    """The account to merge away was merged into another account already."""

    default_detail = "That account was merged into another account already."


class KeptAccountMerged(DomainError):
    """The account to keep was itself merged into another account."""

    default_detail = (
        "The account to keep was itself merged into another account: merge into that one."
    )


class AccountUnconfirmed(DomainError):
    """One of the two accounts is a registration whose address was never confirmed: it
    may still lapse (and be deleted) or be confirmed, so it is not merged either way."""

    default_detail = (
        "That account has never confirmed its address: it is a registration that may "
        "still lapse. Merge it once it is confirmed, or let it lapse."
    )


PROBLEMS: dict[type[DomainError], ProblemType] = {
    InvalidCredentials: ProblemType(401, "invalid-credentials", "Invalid credentials"),
    AccountNotFound: ProblemType(404, "not-found", "No such account"),
    LinkInvalid: ProblemType(400, "token-invalid", "Link cannot be used"),
    LinkUsed: ProblemType(400, "token-used", "Link cannot be used"),
    LinkExpired: ProblemType(400, "token-expired", "Link cannot be used"),
    EmailNotConfirmed: ProblemType(403, "email-not-confirmed", "Email not confirmed"),
    WrongRegistrationPassword: ProblemType(401, "invalid-credentials", "Invalid credentials"),
    # 422, not 401: the caller is signed in, only the password field is wrong.
    WrongCurrentPassword: ProblemType(422, "wrong-password", "Wrong password"),
    SameEmail: ProblemType(422, "same-email", "Same email"),
    EmailTaken: ProblemType(409, "email-taken", "Email belongs to another account"),
    LoginEmailNotRemovable: ProblemType(
        409, "login-email-not-removable", "The login email cannot be removed"
    ),
    AddressNotFound: ProblemType(404, "address-not-found", "No such address"),
    AddressAlreadyYours: ProblemType(422, "address-already-yours", "Address already yours"),
    MergeIntoItself: ProblemType(422, "merge-into-itself", "Cannot merge an account into itself"),
    AccountAlreadyMerged: ProblemType(409, "account-already-merged", "Account already merged"),
    KeptAccountMerged: ProblemType(409, "kept-account-merged", "The account to keep is merged"),
    AccountUnconfirmed: ProblemType(409, "account-unconfirmed", "Account not confirmed"),
}
