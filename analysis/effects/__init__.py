"""What a removal does, measured one way for every removed set (the safety filters, dedup's keep-list, a filter
builder's preview): caption term shifts and term removal rates (`terms`), removal rates over the visual clusters of
the original set (`clusters`, `cached`), their summary lines (`lines`) and charts (`figures`), and the removed rows
as a review population (`removed`). A core package: the analyses that need it import it, never each other."""
