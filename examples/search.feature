@SRCH-1
Feature: Search the catalogue
  As a visitor
  I want to search the catalogue by title, author or subject
  So that I can find a book without asking a librarian

  Scenario: Search by author
    Given the catalogue has books by "Ursula K. Le Guin"
    When I search for "Le Guin"
    Then I see her books first

  Scenario: No results
    When I search for "zzzz"
    Then I see a suggestion to ask a librarian
